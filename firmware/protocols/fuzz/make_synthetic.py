#!/usr/bin/python3
"""Writes the hand-made seed transcripts (protocols without a server on this machine, or
states the real captures do not reach). Real captures come from pcap2transcript.py.
Run from firmware/protocols: /usr/bin/python3 fuzz/make_synthetic.py"""
import os, struct

def write(target, name, records):
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        for direction, data in records:
            f.write(direction + struct.pack(">I", len(data)) + data)

U, D = b">", b"<"
write("http", "synthetic-pipelined-chunked.bin", [
    (U, b"GET /a.js HTTP/1.1\r\nHost: cdn.example\r\n\r\nHEAD /c HTTP/1.1\r\nHost: cdn.example\r\n\r\nGET /b HTTP/1.1\r\nHost: cdn.example\r\n\r\n"),
    (D, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n5;x=1\r\n<titl\r\n10\r\ne>Hi</title>....\r\n0\r\nX: y\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n"),
])
write("http", "synthetic-connect.bin", [
    (U, b"CONNECT mtalk.google.com:5228 HTTP/1.1\r\nHost: mtalk.google.com:5228\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"),
    (D, b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03"),
])
write("winrm", "synthetic-wsman.bin", [
    (U, b"POST /wsman HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Type: multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"\r\nUser-Agent: Microsoft WinRM Client\r\nContent-Length: 40\r\nHost: 10.0.0.20:5985\r\n\r\n--Encrypted Boundary\r\n\r\nxxxxxxxxxxxxx"),
    (D, b"HTTP/1.1 200 \r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Length: 0\r\n\r\n"),
])
write("pop3", "synthetic-dovecot.bin", [
    (D, b"+OK Dovecot ready.\r\n"),
    (U, b"CAPA\r\n"), (D, b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
    (U, b"USER hanako\r\n"), (D, b"+OK\r\n"),
    (U, b"PASS secret\r\n"), (D, b"+OK Logged in.\r\n"),
    (U, b"LIST\r\n"), (D, b"+OK 1 messages:\r\n1 120\r\n.\r\n"),
    (U, b"RETR 1\r\n"), (D, b"+OK 120 octets\r\nFrom: =?ISO-2022-JP?B?GyRCJDMbKEI=?= <a@example.jp>\r\nSubject: pop\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=\"http://x\">y</a>\r\n--b\r\nContent-Disposition: attachment; filename=a.zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n..dot\r\n.\r\n"),
    (U, b"QUIT\r\n"), (D, b"+OK Logging out.\r\n"),
])
msg = b"From: \"Sato\" <sato@example.jp>\r\nSubject: imap\r\n\r\nbody {5}\r\n"
write("imap", "synthetic-dovecot.bin", [
    (D, b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"),
    (U, b"a1 LOGIN sato \"pw\"\r\n"), (D, b"a1 OK Logged in\r\n"),
    (U, b"a2 SELECT INBOX\r\n"), (D, b"* 1 EXISTS\r\na2 OK\r\n"),
    (U, b"a3 UID FETCH 7 (BODY.PEEK[])\r\n"), (D, b"* 1 FETCH (UID 7 BODY[] {%d}\r\n" % len(msg) + msg + b")\r\na3 OK\r\n"),
    (U, b"a4 APPEND Sent {%d}\r\n" % len(msg)), (D, b"+ OK\r\n"), (U, msg + b"\r\n"), (D, b"a4 OK\r\n"),
    (U, b"a5 AUTHENTICATE PLAIN\r\n"), (D, b"+ \r\n"), (U, b"AGtpbXVyYQBwYXNz\r\n"), (D, b"a5 OK\r\n"),
])
write("telnet", "synthetic-login.bin", [
    (D, b"\xff\xfd\x18\xff\xfd\x20\xff\xfb\x01\xff\xfa\x18\x01\xff\xf0"),
    (U, b"\xff\xfc\x18\xff\xfc\x20\xff\xfd\x01"),
    (D, b"\r\nDebian GNU/Linux 12\r\nkuroko login: "),
    (U, b"a"), (D, b"a"), (U, b"d"), (D, b"d"), (U, b"m"), (D, b"m"), (U, b"\x7f"), (D, b"\x08 \x08"),
    (U, b"min\r\x00"), (D, b"\r\nPassword: "), (U, b"pw\r\x00"), (D, b"\r\n$ "),
])
cd = b"(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db01)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=SALES)(CID=(PROGRAM=sqlplus)(HOST=pc01)(USER=suzuki))))"
hdr = bytearray(58)
hdr[0:2] = struct.pack(">H", 58 + len(cd)); hdr[4] = 1
hdr[8:10] = struct.pack(">H", 314); hdr[10:12] = struct.pack(">H", 300)
hdr[24:26] = struct.pack(">H", len(cd)); hdr[26:28] = struct.pack(">H", 58)
write("oracle", "synthetic-connect.bin", [(U, bytes(hdr) + cd), (D, b"\x00\x08\x00\x00\x02\x00\x00\x00")])
write("smtp", "synthetic-bdat-auth.bin", [
    (D, b"220 mx.example.jp ESMTP Postfix\r\n"),
    (U, b"EHLO pc\r\nAUTH PLAIN AGhhbmFrbwBzZWNyZXQ=\r\nMAIL FROM:<h@x>\r\nRCPT TO:<t@y>\r\nBDAT 10\r\nSubject: b"),
    (U, b"BDAT 12 LAST\r\ndat\r\n\r\nbody\r\n"),
    (U, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\n..\r\n.\r\nSTARTTLS\r\n"),
])
dhcp = bytearray(300); dhcp[0] = 1; dhcp[236:240] = b"\x63\x82\x53\x63"
write("identify-udp", "synthetic-datagrams.bin", [
    (U, bytes(dhcp)), (U, b"\x01\x00\x00\x00" + bytes(144)), (U, b"INVITE sip:bob@x SIP/2.0\r\n"),
    (U, b"M-SEARCH * HTTP/1.1\r\n"), (U, b"\x00\x01\x00\x08\x21\x12\xa4\x42" + bytes(12)),
    (U, b"\x1b" + bytes(47)), (U, b"\xc3\x00\x00\x00\x01" + bytes(1200)),
])

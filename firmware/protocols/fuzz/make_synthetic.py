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

# Issue 20's name and software sources, shaped as the real exchanges of the assets_names
# live test (udhcpc ↔ dnsmasq, nmblookup ↔ nmbd, smbclient ↔ smbd).
def dhcp(op, msg_type, yiaddr, options):
    p = bytearray(240)
    p[0], p[1], p[2] = op, 1, 6
    p[16:20] = bytes(yiaddr)
    p[28:34] = bytes([2, 0, 10, 10, 1, 11])
    p[236:240] = b"\x63\x82\x53\x63"
    return bytes(p) + bytes([53, 1, msg_type]) + options + b"\xff"
write("dhcp", "synthetic-udhcpc-dnsmasq.bin", [
    (U, dhcp(1, 1, [0] * 4, b"\x0c\x09pc-tanaka\x3c\x0cudhcp 1.35.0\x37\x03\x01\x03\x06")),
    (D, dhcp(2, 2, [10, 10, 3, 139], b"\x36\x04\x0a\x0a\x03\x01\x33\x04\x00\x00\x0e\x10")),
    (U, dhcp(1, 3, [0] * 4, b"\x32\x04\x0a\x0a\x03\x8b\x36\x04\x0a\x0a\x03\x01\x0c\x09pc-tanaka")),
    (D, dhcp(2, 5, [10, 10, 3, 139], b"\x36\x04\x0a\x0a\x03\x01\x0c\x09pc-tanaka")),
])
def nb_name(name, suffix):
    raw = name.ljust(15).encode()[:15] + bytes([suffix])
    return bytes([32]) + bytes(b for c in raw for b in (65 + (c >> 4), 65 + (c & 15))) + b"\x00"
q = b"\x12\x34\x01\x10\x00\x01\x00\x00\x00\x00\x00\x00" + nb_name("FILESRV01", 0x20) + b"\x00\x20\x00\x01"
a = (b"\x12\x34\x85\x00\x00\x00\x00\x01\x00\x00\x00\x00" + nb_name("FILESRV01", 0x20)
     + b"\x00\x20\x00\x01\x00\x04\x93\xe0\x00\x06\x00\x00\x0a\x0a\x02\x14")
reg = (b"\x56\x78\x29\x10\x00\x01\x00\x00\x00\x00\x00\x01" + nb_name("FILESRV01", 0x00)
       + b"\x00\x20\x00\x01\xc0\x0c\x00\x20\x00\x01\x00\x04\x93\xe0\x00\x06\x00\x00\x0a\x0a\x02\x14")
status = b"\x00\x02\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00" + nb_name("*", 0) + b"\x00\x21\x00\x01\x00\x00\x00\x00"
names = b"\x02" + b"FILESRV01      \x00\x04\x00" + b"OFFICE         \x00\x84\x00" + bytes(46)
status += struct.pack(">H", len(names)) + names
write("netbios-ns", "synthetic-nmblookup-nmbd.bin", [(U, q), (D, a), (U, reg), (D, status)])
def nbss(m):
    return struct.pack(">I", len(m)) + m
def smb2_hdr(cmd, response):
    return b"\xfeSMB" + struct.pack("<HHIHHI", 64, 0, 0, cmd, 1, 1 if response else 0) + bytes(44)
req = smb2_hdr(0, False) + struct.pack("<HHHHI", 36, 5, 1, 0, 0x7f) + bytes(24) + struct.pack("<5H", 0x202, 0x210, 0x300, 0x302, 0x311)
resp = smb2_hdr(0, True) + struct.pack("<HHH", 65, 1, 0x311) + bytes(59)
smb1 = (b"\xffSMB\x72" + bytes(27) + b"\x00" + struct.pack("<H", 34)
        + b"\x02NT LM 0.12\x00\x02SMB 2.002\x00\x02SMB 2.???\x00")
write("smb", "synthetic-smbclient-smbd.bin", [
    (U, nbss(smb1)), (D, nbss(smb2_hdr(0, True) + struct.pack("<HHH", 65, 1, 0x2ff) + bytes(59))),
    (U, nbss(req)), (D, nbss(resp)), (U, nbss(smb2_hdr(1, False) + bytes(24))),
])

#!/usr/bin/python3
"""Turns one TCP stream of a pcap into a Kuroko parser transcript (seed corpus / test data).

Usage: pcap2transcript.py FILE.pcap STREAM_INDEX OUT.bin
Needs tshark. Transcript format: repeated records of
  1 byte direction ('>' client->server, '<' server->client), u32 big-endian length, bytes.
The node that sent the first payload is taken as the client unless it is the server port
side of the SYN (tshark's follow output lists the connection initiator as node 0).
"""
import struct, subprocess, sys

pcap, stream, out = sys.argv[1], sys.argv[2], sys.argv[3]
text = subprocess.run(["tshark", "-r", pcap, "-q", "-z", f"follow,tcp,raw,{stream}"],
                      capture_output=True, text=True, check=True).stdout
records = []
started = False
for line in text.splitlines():
    if line.startswith("Node 1:"):
        started = True
        continue
    if not started or line.startswith("====") or not line.strip():
        continue
    to_client = line.startswith("\t")
    data = bytes.fromhex(line.strip())
    records.append((b"<" if to_client else b">", data))
with open(out, "wb") as f:
    for d, data in records:
        f.write(d + struct.pack(">I", len(data)) + data)
print(f"{out}: {len(records)} records, {sum(len(d) for _, d in records)} bytes")

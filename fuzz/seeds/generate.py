#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ (the files are committed;
rerun this after changing a target's input layout).

Seeds are RFC 6455 examples (§1.2/§1.3 handshake, §5.7 frames) wrapped in
each target's input layout (see the doc comment at the top of each target).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(op, payload, fin=True, key=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    mbit = 0x80 if key else 0
    if n <= 125:
        h = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if key:
        return h + bytes(key) + mask(payload, key)
    return h + payload


KEY = [0x37, 0xFA, 0x21, 0x3D]  # RFC 6455 §5.7
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


# Peer streams: (name, frames) with frames as (op, payload, fin).
STREAMS = {
    "hello": [(TEXT, b"Hello", True)],
    "fragmented_hello": [(TEXT, b"Hel", False), (CONT, b"lo", True)],
    "ping_pong": [(PING, b"Hello", True), (PONG, b"Hello", True)],
    "fragments_with_ping": [(TEXT, b"\xe2\x82", False), (PING, b"", True), (CONT, b"\xac ok", True)],
    "binary_256": [(BINARY, bytes(range(256)), True)],
    "close_normal": [(TEXT, b"bye", True), (CLOSE, close_payload(1000, b"done"), True)],
    "close_empty": [(CLOSE, b"", True)],
    "bad_utf8": [(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", True)],
}


def stream(frames, masked):
    return b"".join(frame(op, p, fin, KEY if masked else None) for op, p, fin in frames)


for name, frames in STREAMS.items():
    # [separator, config flags, stream]: split after every 0x6c ('l') byte;
    # flags 0 = whole messages, 1 = deliver fragments.
    for flags in (0, 1):
        write("connection_server", f"{name}_{flags}", bytes([0x6C, flags]) + stream(frames, True))
        write("connection_client", f"{name}_{flags}", bytes([0x6C, flags]) + stream(frames, False))
    # connection_ops reads its input with `arbitrary`; raw frames still make
    # useful byte material for it.
    write("connection_ops", name, stream(frames, True))

# frame_header: every length form, masked and not.
write("frame_header", "text_hello", frame(TEXT, b"Hello"))
write("frame_header", "text_hello_masked", frame(TEXT, b"Hello", key=KEY))
write("frame_header", "len16", frame(BINARY, b"\0" * 256)[:4])
write("frame_header", "len16_masked", frame(BINARY, b"\0" * 256, key=KEY)[:8])
write("frame_header", "len64", bytes([0x82, 0x7F]) + struct.pack(">Q", 65536))
write("frame_header", "len64_masked", bytes([0x82, 0xFF]) + struct.pack(">Q", 65536) + bytes(KEY))
write("frame_header", "non_minimal_len16", bytes([0x82, 0x7E, 0x00, 0x05]))
write("frame_header", "close", frame(CLOSE, close_payload(1000)))

REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
# [split lo, split hi, limit, request]: limit 0 = default 8 KiB head cap,
# 0x80 | n = 32 + 8n bytes.
write("handshake_server", "rfc_request", struct.pack("<H", 40) + b"\0" + REQUEST)
write("handshake_server", "rfc_request_then_frame", struct.pack("<H", 200) + b"\0" + REQUEST + frame(TEXT, b"Hello", key=KEY))
write("handshake_server", "rfc_request_small_limit", struct.pack("<H", 7) + b"\x90" + REQUEST)
write(
    "handshake_server",
    "extensions_version_8",
    struct.pack("<H", 100)
    + b"\0"
    + REQUEST.replace(b"Version: 13", b"Version: 8").replace(
        b"Origin:", b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\"\r\nOrigin:"
    ),
)
write("handshake_server", "post", struct.pack("<H", 3) + b"\0" + REQUEST.replace(b"GET", b"POST"))

RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n\r\n"
)
# [split lo, split hi, response]
write("handshake_client", "rfc_response", struct.pack("<H", 30) + RESPONSE)
write("handshake_client", "rfc_response_then_frame", struct.pack("<H", 500) + RESPONSE + frame(TEXT, b"Hello"))
write(
    "handshake_client",
    "rfc_response_extension",
    struct.pack("<H", 60)
    + RESPONSE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n\r\n"),
)
write("handshake_client", "not_found", struct.pack("<H", 20) + b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n")
write("handshake_client", "upgrade_required", struct.pack("<H", 9) + b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 8\r\nContent-Length: 0\r\n\r\n")
write("handshake_client", "redirect", struct.pack("<H", 2) + b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://server.example.com/chat\r\n\r\n")

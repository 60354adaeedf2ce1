#!/usr/bin/env python3
"""Smoke test for the peer echo servers (needs `pip install websockets`).

    smoke.py ws  HOST:PORT   text "hello", 100 KiB binary, 16 MiB binary,
                             1000 pipelined mixed messages, a ping,
                             then a clean close handshake
    smoke.py raw HOST:PORT   raw TCP: 1 MiB of bytes must come back unchanged

Prints one line per check and exits non-zero on the first failure.
"""
import asyncio
import os
import socket
import sys
import time


async def ws_smoke(addr: str) -> None:
    from websockets.asyncio.client import connect

    uri = f"ws://{addr}/any/path?x=1"
    async with connect(uri, compression=None, max_size=None, ping_interval=None,
                       open_timeout=10, close_timeout=10) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None, \
            "server negotiated an extension"
        cases = [
            ("text 'hello'", "hello"),
            ("binary 100 KiB", os.urandom(100 * 1024)),
            ("binary 16 MiB", os.urandom(16 * 1024 * 1024)),
        ]
        for name, payload in cases:
            t = time.monotonic()
            await ws.send(payload)
            echo = await asyncio.wait_for(ws.recv(), 30)
            ok = type(echo) is type(payload) and echo == payload
            print(f"  {name}: {'ok' if ok else 'MISMATCH'} ({time.monotonic() - t:.3f}s)")
            if not ok:
                raise SystemExit(1)
        burst = [f"msg-{i}" if i % 2 else os.urandom(i % 4096) for i in range(1000)]
        for m in burst:
            await ws.send(m)
        got = [await asyncio.wait_for(ws.recv(), 30) for _ in burst]
        ok = got == burst
        print(f"  1000 pipelined mixed messages: {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(1)
        pong = await ws.ping(b"smoke")
        await asyncio.wait_for(pong, 10)
        print("  ping -> pong: ok")
        await ws.close(1000, "bye")
        rcvd = ws.protocol.close_rcvd
        code = rcvd.code if rcvd else None
        ok = code == 1000
        print(f"  close handshake: {'ok' if ok else 'FAILED'} (server close code {code})")
        if not ok:
            raise SystemExit(1)


def raw_smoke(addr: str) -> None:
    host, port = addr.rsplit(":", 1)
    payload = os.urandom(1024 * 1024)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"hello")
        got = b""
        while len(got) < 5:
            got += s.recv(5 - len(got))
        print(f"  5 bytes 'hello': {'ok' if got == b'hello' else 'MISMATCH'}")
        if got != b"hello":
            raise SystemExit(1)
        s.sendall(payload)
        got = bytearray()
        while len(got) < len(payload):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        ok = bytes(got) == payload
        print(f"  1 MiB bytes: {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("ws", "raw"):
        print(__doc__)
        raise SystemExit(2)
    if sys.argv[1] == "ws":
        asyncio.run(ws_smoke(sys.argv[2]))
    else:
        raw_smoke(sys.argv[2])

"""Python `websockets` peer for scripts/interop (compression: the library's default).

    peer.py client URL   send every message of messages.py, check the echoes
                         byte for byte, print one JSON report line
    peer.py server       echo server on a free 127.0.0.1 port: prints
                         `listening PORT`, then a JSON report line per connection
"""

import asyncio
import json
import os
import sys

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import messages  # noqa: E402


def extensions_header(headers):
    return ", ".join(headers.get_all("Sec-WebSocket-Extensions")) or None


def raw(m):
    return m.encode() if isinstance(m, str) else m


async def client(url):
    sent = messages.texts() + messages.binaries()
    errors = []
    async with connect(url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        ext = extensions_header(ws.response.headers)
        negotiated = [e.name for e in ws.protocol.extensions]

        async def send_all():
            for m in sent:
                await ws.send(m)

        async def recv_all():
            got = []
            for _ in sent:
                got.append(await ws.recv())
            return got

        _, got = await asyncio.wait_for(asyncio.gather(send_all(), recv_all()), 30)
    for k, (s, g) in enumerate(zip(sent, got)):
        if type(s) is not type(g):
            errors.append(f"message {k}: sent {type(s).__name__}, echo is {type(g).__name__}")
        elif s != g:
            errors.append(f"message {k}: echo differs ({len(raw(g))} bytes, sent {len(raw(s))})")
    print(json.dumps({
        "ok": not errors,
        "library": f"websockets {websockets.__version__}",
        "extensions": ext,
        "negotiated": negotiated,
        "messages": len(sent),
        "payload": sum(len(raw(m)) for m in sent),
        "largest_text": max(len(raw(m)) for m in sent if isinstance(m, str)),
        "errors": errors,
    }), flush=True)


async def server():
    async def handler(ws):
        n = size = 0
        async for msg in ws:
            n += 1
            size += len(raw(msg))
            await ws.send(msg)
        print(json.dumps({
            "library": f"websockets {websockets.__version__}",
            "extensions": extensions_header(ws.response.headers),
            "negotiated": [e.name for e in ws.protocol.extensions],
            "messages": n,
            "payload": size,
        }), flush=True)

    async with serve(handler, "127.0.0.1", 0, max_size=None) as srv:
        print(f"listening {srv.sockets[0].getsockname()[1]}", flush=True)
        await srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        asyncio.run(client(sys.argv[2]))
    else:
        asyncio.run(server())

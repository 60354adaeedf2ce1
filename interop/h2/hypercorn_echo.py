"""Hypercorn (h2 + wsproto under an ASGI app) as the echo server of the wsx
client over HTTP/2 (scripts/interop-h2: `interop_client --http2`), the
counterpart of `interop/python/peer.py server` over HTTP/1.1. Hypercorn
advertises SETTINGS_ENABLE_CONNECT_PROTOCOL, answers CONNECT
:protocol=websocket with 200 (permessage-deflate when offered: wsproto's
PerMessageDeflate, over HTTP/2 as over HTTP/1.1), and takes h2c with prior
knowledge and HTTP/1.1 on the same port.

    python hypercorn_echo.py [--ping-interval SECS]

Binds a free 127.0.0.1 port, prints `listening PORT`, then one JSON line per
WebSocket when it ends, with the keys of peer.py's server: library, path,
http_version (the ASGI scope's: "2" for a CONNECT stream), extensions (the
Sec-WebSocket-Extensions hypercorn answered), messages, payload, big (16 MiB
ones by SHA-256), pings (the ping payloads it received and answered), ping,
sent_close, close_code and close_reason (of the close frame it received; 1006
and "": none), oversize; and asgi_disconnect (the code hypercorn gave the app).

It echoes every message, except the wsx client's commands:

  please close CODE [REASON]  a close handshake (REASON: OUR_REASON unless CODE is 1000)
  please send oversize        one binary of 16 MiB + 1 byte (wsx must refuse it with 1009)
  please ping PAYLOAD         NOT POSSIBLE: an ASGI app cannot send a ping
                              (hypercorn answers pings, and with --ping-interval
                              sends its own empty ones). Answered with a text
                              `cannot ping: WHY`; reported as ping.unsupported.
  please drop                 NOT POSSIBLE: ASGI has no way to end a WebSocket
                              without a close frame (an app that raises gets a
                              1011 close from hypercorn; there is no RST_STREAM
                              or TCP reset to ask for). Answered with a text
                              `cannot drop: WHY`; reported as drop.unsupported
                              (wsx then closes with 1000).

What ASGI does not show is observed in hypercorn itself (_observe_hypercorn),
the way peer.py records the frames `websockets` parsed: the extensions header
of hypercorn's answer, and the pings and the close frame wsproto parsed on
each stream. ASGI's websocket.disconnect cannot stand in for the close frame:
hypercorn 0.18 gives the app 1006 for every close the client starts (the
app's side was still open, whatever the frame said) and 1000 for every close
the app started, and never a reason.

Like `wsx serve --console`, it also reads commands from stdin, applied to
every open WebSocket: `/close [CODE [REASON]]` and `/drop` (the app raises:
hypercorn closes with 1011).
"""

import argparse
import asyncio
import importlib.metadata
import json
import os
import signal
import socket
import sys
import threading
import time

from hypercorn.asyncio import serve
from hypercorn.config import Config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import messages  # noqa: E402

LIBRARY = f"hypercorn {importlib.metadata.version('hypercorn')}"
OUR_REASON = "bye from hypercorn"
OPEN = set()  # asyncio.Queue per open WebSocket: console commands
OBSERVED = "wsx.observed"  # scope key: what _observe_hypercorn saw on the stream
CANNOT_PING = ("cannot ping: an ASGI app cannot send a ping (hypercorn answers pings, and sends its own "
               "empty keepalive pings only with websocket_ping_interval)")
CANNOT_DROP = ("cannot drop: ASGI has no way to end a WebSocket without a close frame (an app that raises "
               "gets a 1011 close from hypercorn; no RST_STREAM, no TCP reset)")


def _patch_hypercorn():
    """Hypercorn 0.18 forgets a WebSocket stream once it has sent its own
    END_STREAM; the client's END_STREAM (an empty DATA frame) arriving after
    that raises KeyError in H2Protocol._handle_events and kills the whole
    connection (also DATA still arriving after its 1009). Drop DATA for
    forgotten streams (acknowledging it) instead."""
    import h2.events
    from hypercorn.protocol.h2 import H2Protocol

    original = H2Protocol._handle_events

    async def handle_events(self, events):
        for ev in events:  # one at a time: a stream may go away in the middle of a batch
            if isinstance(ev, h2.events.DataReceived) and ev.stream_id not in self.streams:
                try:
                    self.connection.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except Exception:
                    pass
                continue
            await original(self, [ev])

    H2Protocol._handle_events = handle_events


def _observe_hypercorn():
    """Records, per WebSocket, what ASGI does not tell the app, in
    scope[OBSERVED]: the Sec-WebSocket-Extensions of hypercorn's answer, the
    payloads of the pings wsproto parsed (hypercorn answers each), and the
    first close frame it parsed (code, reason, when). Observation only:
    hypercorn's behaviour is unchanged."""
    from hypercorn.protocol import ws_stream
    from wsproto.events import CloseConnection, Ping

    accept_headers = ws_stream.Handshake.accept

    def handshake_accept(self, subprotocol, additional_headers):
        status, headers, connection = accept_headers(self, subprotocol, additional_headers)
        self.wsx_answer = (status, headers)
        return status, headers, connection

    ws_stream.Handshake.accept = handshake_accept

    accept = ws_stream.WSStream._accept

    async def stream_accept(self, message):
        await accept(self, message)
        status, headers = getattr(self.handshake, "wsx_answer", (None, []))
        seen = {
            "status": status,
            "extensions": ", ".join(v.decode() for k, v in headers if k.lower() == b"sec-websocket-extensions") or None,
            "pings": [],
            "close": None,
            "close_at": None,
        }
        self.scope[OBSERVED] = seen
        events = self.connection.events

        def observed():
            for ev in events():
                if isinstance(ev, Ping):
                    seen["pings"].append(bytes(ev.payload))
                elif isinstance(ev, CloseConnection) and seen["close"] is None:
                    seen["close"] = (ev.code, ev.reason or "")
                    seen["close_at"] = time.monotonic()
                yield ev

        self.connection.events = observed

    ws_stream.WSStream._accept = stream_accept


_patch_hypercorn()
_observe_hypercorn()


def raw(m):
    return m.encode() if isinstance(m, str) else m


def kind(m):
    return "text" if isinstance(m, str) else "binary"


async def http_app(receive, send):
    await receive()
    body = b"hypercorn echo peer\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await http_app(receive, send)
        return
    rec = {"library": LIBRARY, "path": scope["path"], "http_version": scope.get("http_version"),
           "messages": 0, "payload": 0, "big": []}
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    await send({"type": "websocket.accept"})
    seen = scope.get(OBSERVED) or {}
    rec["extensions"] = seen.get("extensions")
    commands = asyncio.Queue()
    OPEN.add(commands)
    next_cmd = asyncio.ensure_future(commands.get())
    next_msg = asyncio.ensure_future(receive())
    oversize_at = None
    try:
        while True:
            done, _ = await asyncio.wait({next_cmd, next_msg}, return_when=asyncio.FIRST_COMPLETED)
            if next_cmd in done:
                cmd = next_cmd.result()
                next_cmd = asyncio.ensure_future(commands.get())
                if cmd[0] == "close":
                    rec["sent_close"] = [cmd[1], cmd[2]]
                    await send({"type": "websocket.close", "code": cmd[1], "reason": cmd[2]})
                elif cmd[0] == "drop":
                    rec["sent_close"] = "raised (console /drop): hypercorn closes with 1011"
                    raise RuntimeError("dropped by the console (/drop)")
            if next_msg not in done:
                continue
            msg = next_msg.result()
            if msg["type"] == "websocket.disconnect":
                rec["asgi_disconnect"] = [msg.get("code"), msg.get("reason")]
                break
            next_msg = asyncio.ensure_future(receive())
            m = msg["text"] if msg.get("text") is not None else (msg.get("bytes") or b"")
            if isinstance(m, str) and m.startswith("please "):
                words = m.split(" ")
                if words[1] == "ping":
                    payload = m[len("please ping "):]
                    rec["ping"] = {"payload": payload, "pong": None, "unsupported": CANNOT_PING}
                    await send({"type": "websocket.send", "text": CANNOT_PING})
                elif words[1] == "close":
                    code = int(words[2])
                    reason = " ".join(words[3:]) or (OUR_REASON if code != 1000 else "")
                    rec["sent_close"] = [code, reason]
                    await send({"type": "websocket.close", "code": code, "reason": reason})
                elif words[1] == "drop":
                    rec["drop"] = {"unsupported": CANNOT_DROP}
                    await send({"type": "websocket.send", "text": CANNOT_DROP})
                elif m == "please send oversize":
                    big = messages.oversize()
                    rec["oversize"] = {"bytes": len(big)}
                    oversize_at = time.monotonic()
                    await send({"type": "websocket.send", "bytes": big})
                    rec["oversize"]["send_secs"] = round(time.monotonic() - oversize_at, 3)
                continue
            rec["messages"] += 1
            rec["payload"] += len(raw(m))
            if len(raw(m)) >= 1 << 20:
                rec["big"].append({"kind": kind(m), "bytes": len(raw(m)), "sha256": messages.sha256(m)})
            if isinstance(m, str):
                await send({"type": "websocket.send", "text": m})
            else:
                await send({"type": "websocket.send", "bytes": m})
    finally:
        OPEN.discard(commands)
        next_cmd.cancel()
        if not next_msg.done():
            next_msg.cancel()
        rec["pings"] = [p.decode(errors="replace") for p in seen.get("pings", [])]
        rec["close_code"], rec["close_reason"] = seen.get("close") or (1006, "")
        if "oversize" in rec:
            # From the start of the send to the end (the app's disconnect), and
            # to the arrival of the wsx client's close frame.
            rec["oversize"]["secs"] = round(time.monotonic() - oversize_at, 3)
            at = seen.get("close_at")
            rec["oversize"]["close_frame_secs"] = None if at is None else round(at - oversize_at, 3)
        print(json.dumps(rec), flush=True)


async def console():
    # stdin is read by a daemon thread: a blocked read must not keep the
    # process alive after SIGTERM.
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()
    threading.Thread(target=lambda: [loop.call_soon_threadsafe(lines.put_nowait, l) for l in iter(sys.stdin.readline, "")],
                     daemon=True).start()
    while True:
        line = (await lines.get()).strip()
        if line.startswith("/close"):
            words = line.split(" ", 2)
            code = int(words[1]) if len(words) > 1 else 1000
            cmd = ("close", code, words[2] if len(words) > 2 else "")
        elif line == "/drop":
            cmd = ("drop",)
        else:
            print(f"console: {line!r} not supported", file=sys.stderr, flush=True)
            continue
        for q in list(OPEN):
            q.put_nowait(cmd)
        print(f"console: {cmd[0]} sent to {len(OPEN)} connection(s)", file=sys.stderr, flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ping-interval", type=float, default=None)
    args = ap.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.websocket_ping_interval = args.ping_interval
    # No limit of its own in the way of the 16 MiB messages (peer.py: max_size=None).
    config.websocket_max_message_size = 64 << 20
    # Hypercorn forgets a WebSocket's stream as soon as its closing handshake
    # is over, even when it has not ended the stream (it never sends
    # END_STREAM after a close the client started, or after a 1009 from the
    # client), and then counts the connection as idle: keep_alive_timeout
    # (default 5 s) closes the whole HTTP/2 connection, without GOAWAY. The
    # wsx client meanwhile waits up to its close timeout (also 5 s) for that
    # END_STREAM before it resets the stream and opens the next WebSocket, so
    # with the default the connection is closed under it about half the
    # time. A longer keep-alive keeps the one connection for the whole run.
    config.keep_alive_timeout = 60
    config.accesslog = None
    print(f"listening {sock.getsockname()[1]}", flush=True)
    reader = asyncio.ensure_future(console())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await serve(app, config, shutdown_trigger=stop.wait)
    finally:
        reader.cancel()


if __name__ == "__main__":
    asyncio.run(main())

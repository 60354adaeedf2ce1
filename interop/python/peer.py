"""Python `websockets` peer for scripts/interop (compression: the library's default).

    peer.py client BASE_URL CONSOLE   against `wsx serve --console --ping-interval 1`;
                                      CONSOLE is the FIFO its stdin reads (commands
                                      go there); prints one JSON report line
    peer.py server                    echo server on a free 127.0.0.1 port: prints
                                      `listening PORT`, then a JSON report line per
                                      connection

The client runs, each on its own connection (path in brackets):

  [/suite]  the suite of messages.py, echoes checked byte for byte; a ping from
            here (the pong must carry its payload); a ping from wsx (`/ping`
            on the console) and a keepalive ping, answered by websockets
  [/big]    the 16 MiB binary and text, echoes checked byte for byte
  [/oversize]  one binary of 16 MiB + 1 byte: wsx must close with 1009; reported:
            the close code and reason seen, echoes (none expected), the time
            from the start of the send to the end of the connection
  [/close/CASE]  one close path each (CLOSE_CASES): this side closes (1000, or
            4000 with a reason) or resets the TCP connection (RST, no close
            frame); or wsx does, told through the console (/close, /close 4001
            REASON, /drop: wsx ends TCP with a FIN)

The server echoes every message, except commands from the wsx client:
`please ping PAYLOAD` (ping it, wait for the pong, answer `pong PAYLOAD`),
`please close CODE [REASON]` (REASON: OUR_REASON unless CODE is 1000),
`please drop` (reset TCP: RST, no close frame) and `please send oversize`
(send one binary of 16 MiB + 1 byte, which the wsx client must refuse with 1009).
Its report per connection: the path, what it received (16 MiB ones by
SHA-256), the pings it received, its own ping's fate, the close code and
reason it saw (1006: none) and, after `please send oversize`, the time from
the start of that send to the end of the connection.
"""

import asyncio
import hashlib
import json
import os
import socket
import struct
import sys
import time

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import messages  # noqa: E402

LIBRARY = f"websockets {websockets.__version__}"
# Our reason in the 4000 close (peer-initiated); wsx's is "bye from wsx".
OUR_REASON = "bye from websockets"
WSX_REASON = "bye from wsx"
# (case, who closes, code or None for a dropped connection, reason)
CLOSE_CASES = [
    ("peer-1000", "peer", 1000, ""),
    ("peer-4000", "peer", 4000, OUR_REASON),
    ("peer-drop", "peer", None, ""),
    ("wsx-1000", "wsx", 1000, ""),
    ("wsx-4001", "wsx", 4001, WSX_REASON),
    ("wsx-drop", "wsx", None, ""),
]
PING_PAYLOAD = b"ping from websockets"
CONSOLE_PING = "ping-from-wsx-serve"
# Connections that run longer than this fail the test (every wait is bounded).
STEP_TIMEOUT = 30


class PingLog:
    """Records the payload of every ping received (websockets answers them)
    and when a close frame arrived (close_frame_at, time.monotonic())."""

    def process_event(self, event):
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.__dict__.setdefault("pings", []).append(bytes(event.data))
        if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
            self.__dict__.setdefault("close_frame_at", time.monotonic())
        super().process_event(event)


class Client(PingLog, ClientConnection):
    pass


class Server(PingLog, ServerConnection):
    pass


def reset(ws):
    """Drops the TCP connection with a reset (SO_LINGER 0: RST), no close frame."""
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


def extensions_header(headers):
    return ", ".join(headers.get_all("Sec-WebSocket-Extensions")) or None


def raw(m):
    return m.encode() if isinstance(m, str) else m


def kind(m):
    return "text" if isinstance(m, str) else "binary"


def compare(sent, got, errors, what):
    if len(got) != len(sent):
        errors.append(f"{what}: {len(got)} echoes for {len(sent)} messages")
    for k, (s, g) in enumerate(zip(sent, got)):
        if type(s) is not type(g):
            errors.append(f"{what} message {k}: sent {kind(s)}, echo is {kind(g)}")
        elif s != g:
            errors.append(f"{what} message {k}: echo differs ({len(raw(g))} bytes, sent {len(raw(s))})")


async def wait_until(cond, secs):
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def open_client(url):
    # ping_interval=None: the only pings from here are the test's own.
    return connect(url, max_size=None, open_timeout=10, close_timeout=5, ping_interval=None,
                   create_connection=Client)


async def echo_all(ws, sent):
    async def send_all():
        for m in sent:
            await ws.send(m)

    async def recv_all():
        return [await ws.recv() for _ in sent]

    _, got = await asyncio.wait_for(asyncio.gather(send_all(), recv_all()), STEP_TIMEOUT)
    return got


async def client_suite(base, console, report):
    errors = report["errors"]
    sent = messages.texts() + messages.binaries()
    async with open_client(base + "suite") as ws:
        report["extensions"] = extensions_header(ws.response.headers)
        report["negotiated"] = [e.name for e in ws.protocol.extensions]
        compare(sent, await echo_all(ws, sent), errors, "suite")
        report["messages"] = len(sent)
        report["payload"] = sum(len(raw(m)) for m in sent)

        # Our ping: websockets completes the waiter only for a pong with this payload.
        ping = {"payload": PING_PAYLOAD.decode(), "pong": False}
        try:
            waiter = await ws.ping(PING_PAYLOAD)
            ping["rtt_ms"] = round(1000 * await asyncio.wait_for(waiter, 5), 3)
            ping["pong"] = True
        except (asyncio.TimeoutError, ConnectionClosed) as e:
            errors.append(f"no pong for our ping: {e!r}")
        report["ping"] = ping

        # wsx's pings: one from the console, and the keepalive (--ping-interval 1).
        pings = lambda: ws.__dict__.get("pings", [])  # noqa: E731
        console_line(console, f"/ping {CONSOLE_PING}")
        seen = await wait_until(lambda: CONSOLE_PING.encode() in pings(), 5)
        keepalive = await wait_until(lambda: any(p != CONSOLE_PING.encode() for p in pings()), 5)
        report["wsx_ping"] = {"payload": CONSOLE_PING, "seen": seen}
        report["keepalive_pings"] = sum(p != CONSOLE_PING.encode() for p in pings())
        if not seen:
            errors.append(f"the console's ping ({CONSOLE_PING}) did not arrive")
        if not keepalive:
            errors.append("no keepalive ping from wsx serve within 5 s (--ping-interval 1)")


async def client_big(base, report):
    errors = report["errors"]
    sent = messages.bigs()
    report["big"] = [{"kind": kind(m), "bytes": len(raw(m)), "sha256": messages.sha256(m)} for m in sent]
    started = time.monotonic()
    async with open_client(base + "big") as ws:
        got = await echo_all(ws, sent)
    report["big_secs"] = round(time.monotonic() - started, 2)
    compare(sent, got, errors, "16 MiB")
    for entry, s, g in zip(report["big"], sent, got):
        entry["echo_ok"] = s == g


async def client_oversize(base, report):
    """One message of 16 MiB + 1 byte: wsx serve must close with 1009 and a
    reason, promptly, without echoing anything."""
    msg = messages.oversize()
    out = {"bytes": len(msg), "echoes": 0}
    report["oversize"] = out
    async with open_client(base + "oversize") as ws:
        started = time.monotonic()
        try:
            await asyncio.wait_for(ws.send(msg), STEP_TIMEOUT)
        except ConnectionClosed:
            pass  # wsx closed while we were still sending
        out["send_secs"] = round(time.monotonic() - started, 3)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
                out["echoes"] += 1
        except ConnectionClosed:
            # From the start of the send (which includes compressing the
            # message) to the end websockets reports (after the closing
            # handshake); close_frame_secs: to the arrival of wsx's close frame.
            out["secs"] = round(time.monotonic() - started, 3)
        except asyncio.TimeoutError:
            # The other steps still run: end this connection ourselves.
            report["errors"].append("oversize: wsx serve did not close the connection within 10 s")
            await ws.close(1000)
        await asyncio.wait_for(ws.wait_closed(), 10)
        out["saw_code"], out["saw_reason"] = ws.close_code, ws.close_reason
        at = ws.__dict__.get("close_frame_at")
        out["close_frame_secs"] = None if at is None else round(at - started, 3)


def console_line(console, line):
    # The FIFO is held open by the script: opening it for writing does not block.
    with open(console, "w") as f:
        f.write(line + "\n")


async def client_close(base, console, case, initiator, code, reason):
    """One close path; returns what this side saw."""
    out = {"case": case, "initiator": initiator, "code": code, "reason": reason}
    async with open_client(base + "close/" + case) as ws:
        # An echo first: wsx serve's side of the connection is up and running.
        await ws.send("hello")
        await asyncio.wait_for(ws.recv(), 10)
        if initiator == "peer":
            if code is None:
                reset(ws)
            else:
                await ws.close(code, reason)
        else:
            console_line(console, "/drop" if code is None else f"/close {code} {reason}".rstrip())
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed:
                pass
        await asyncio.wait_for(ws.wait_closed(), 10)
        out["saw_code"], out["saw_reason"] = ws.close_code, ws.close_reason
    return out


async def client(base, console):
    report = {"library": LIBRARY, "errors": [], "closes": []}
    errors = report["errors"]
    try:
        await client_suite(base, console, report)
        await client_big(base, report)
        await client_oversize(base, report)
        for case in CLOSE_CASES:
            report["closes"].append(await client_close(base, console, *case))
    except Exception as e:  # report whatever happened, with what got done
        errors.append(f"{type(e).__name__}: {e}")
    report["ok"] = not errors
    print(json.dumps(report), flush=True)


async def server():
    async def handler(ws):
        rec = {
            "library": LIBRARY,
            "path": ws.request.path,
            "extensions": extensions_header(ws.response.headers),
            "negotiated": [e.name for e in ws.protocol.extensions],
            "messages": 0,
            "payload": 0,
            "big": [],
        }
        oversize_at = None
        try:
            async for msg in ws:
                if isinstance(msg, str) and msg.startswith("please "):
                    words = msg.split(" ")
                    if words[1] == "ping":
                        payload = msg[len("please ping "):].encode()
                        rec["ping"] = {"payload": payload.decode(), "pong": False}
                        waiter = await ws.ping(payload)
                        await asyncio.wait_for(waiter, 5)
                        rec["ping"]["pong"] = True
                        await ws.send(f"pong {payload.decode()}")
                    elif words[1] == "close":
                        code = int(words[2])
                        reason = " ".join(words[3:]) or (OUR_REASON if code != 1000 else "")
                        rec["sent_close"] = [code, reason]
                        await ws.close(code, reason)
                    elif words[1] == "drop":
                        rec["sent_close"] = "drop"
                        reset(ws)
                    elif msg == "please send oversize":
                        big = messages.oversize()
                        rec["oversize"] = {"bytes": len(big)}
                        oversize_at = time.monotonic()
                        await ws.send(big)
                        rec["oversize"]["send_secs"] = round(time.monotonic() - oversize_at, 3)
                    continue
                rec["messages"] += 1
                rec["payload"] += len(raw(msg))
                if len(raw(msg)) >= 1 << 20:
                    rec["big"].append({"kind": kind(msg), "bytes": len(raw(msg)), "sha256": messages.sha256(msg)})
                await ws.send(msg)
        except ConnectionClosed:
            pass
        except asyncio.TimeoutError:
            rec["error"] = "no pong within 5 s"
        await asyncio.wait_for(ws.wait_closed(), 10)
        rec["pings"] = [p.decode(errors="replace") for p in ws.__dict__.get("pings", [])]
        rec["close_code"], rec["close_reason"] = ws.close_code, ws.close_reason
        if "oversize" in rec:
            # From the start of the send to the end (after the closing
            # handshake), and to the arrival of the wsx client's close frame.
            rec["oversize"]["secs"] = round(time.monotonic() - oversize_at, 3)
            at = ws.__dict__.get("close_frame_at")
            rec["oversize"]["close_frame_secs"] = None if at is None else round(at - oversize_at, 3)
        print(json.dumps(rec), flush=True)

    async with serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None,
                     create_connection=Server) as srv:
        print(f"listening {srv.sockets[0].getsockname()[1]}", flush=True)
        await srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        asyncio.run(client(sys.argv[2], sys.argv[3]))
    else:
        asyncio.run(server())

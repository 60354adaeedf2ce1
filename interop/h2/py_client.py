"""WebSockets over HTTP/2 (RFC 8441, extended CONNECT) by hand: Python `h2` for
the HTTP/2 connection, `wsproto` (its H11-free Connection) for the WebSocket
frames on each stream. A client of `wsx serve --h2c` for scripts/interop-h2,
mirroring the client of interop/python/peer.py.

    py_client.py BASE_URL CONSOLE [--ca FILE] [--phases LIST]

BASE_URL: ws://HOST:PORT/ (h2c with prior knowledge over one TCP connection)
or wss://HOST:PORT/ (TLS, ALPN h2; --ca FILE trusts that certificate,
otherwise certificates are not checked: loopback only). CONSOLE: the FIFO the
server's console reads (`wsx serve --console`), or `-` for none.

One TCP connection for everything. Right after the preface it waits for the
server's SETTINGS and fails unless they carry SETTINGS_ENABLE_CONNECT_PROTOCOL
= 1. Each WebSocket is one stream: CONNECT with :protocol websocket, :scheme,
:path, :authority, sec-websocket-version: 13 and a permessage-deflate offer
(wsproto's PerMessageDeflate); a 200 answers it, its sec-websocket-extensions
finalizes the extension; then WebSocket frames travel as DATA on the stream
(received data is acknowledged as it is consumed; sending respects the
stream's and the connection's windows). An orderly end is the closing
handshake followed by END_STREAM both ways; an abrupt one is RST_STREAM.

Phase 1, concurrently on the one connection (path in brackets):

  [/suite]  the suite of messages.py, echoes checked byte for byte; a ping from
            here (the pong must carry its payload); a ping from the console
            (`/ping`) and keepalive pings (--ping-interval 1), answered
  [/big]    the 16 MiB binary and text, echoes checked byte for byte (SHA-256)
  [/oversize]  one binary of 16 MiB + 1 byte: the server must close with 1009;
            reported: the close code and reason seen, echoes (none expected),
            the time from the start of the send to the close frame
  [/close/peer-1000], [/close/peer-4000]  this side closes (1000; 4000 + reason)
  [/close/peer-drop]  this side resets the stream (RST_STREAM CANCEL), no close frame

Phase 2, one at a time (console commands apply to every open WebSocket):
[/close/wsx-1000], [/close/wsx-4001], [/close/wsx-drop]: the server closes,
told through the console (/close, /close 4001 REASON, /drop).

Phase 3: [/after] one more echo on the same connection: resets and drops of
single streams must leave the HTTP/2 connection (and its other streams) alone.

Prints one JSON report line; exits 1 when the report has errors.
"""

import argparse
import asyncio
import collections
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

import h2
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import wsproto
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import client_extensions_handshake
from wsproto.utilities import split_comma_header

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import messages  # noqa: E402

LIBRARY = f"h2 {h2.__version__} + wsproto {wsproto.__version__}"
OUR_REASON = "bye from h2+wsproto"
WSX_REASON = "bye from wsx"
# (case, who closes, code or None for a reset / dropped stream, reason, phase)
CLOSE_CASES = [
    ("peer-1000", "peer", 1000, "", 1),
    ("peer-4000", "peer", 4000, OUR_REASON, 1),
    ("peer-drop", "peer", None, "", 1),
    ("wsx-1000", "wsx", 1000, "", 2),
    ("wsx-4001", "wsx", 4001, WSX_REASON, 2),
    ("wsx-drop", "wsx", None, "", 2),
]
PING_PAYLOAD = b"ping from h2+wsproto"
CONSOLE_PING = "ping-from-wsx-serve"
STEP_TIMEOUT = 30
# After the closing handshake, the server's END_STREAM must follow within this many seconds.
END_GRACE = 2
# Our receive windows: the 16 MiB echoes need not wait for WINDOW_UPDATEs.
STREAM_WINDOW = 16 << 20
CONNECTION_WINDOW = 64 << 20
DEBUG = bool(os.environ.get("H2_CLIENT_DEBUG"))
ECP = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL


class Closed(Exception):
    """The WebSocket ended while we were waiting for a message."""


class WsStream:
    """One WebSocket on one HTTP/2 stream."""

    def __init__(self, conn, sid, path):
        self.conn, self.sid, self.path = conn, sid, path
        self.response = asyncio.get_running_loop().create_future()
        self.status = None
        self.headers = {}
        self.extensions_header = None
        self.negotiated = []
        self.ws = None  # wsproto Connection, once the 200 arrived
        self.out = collections.deque()  # memoryviews waiting for window
        self.drained = asyncio.Event()
        self.drained.set()
        self.end_pending = False
        self.local_ended = False  # we sent END_STREAM
        self.local_reset = None  # error code of our RST_STREAM
        self.remote_ended = False  # the server sent END_STREAM
        self.remote_reset = None  # error code of the server's RST_STREAM
        self.done = asyncio.Event()  # the server's half has ended (END_STREAM, RST_STREAM, connection lost)
        self.ws_closed = asyncio.Event()  # the WebSocket is over (closing handshake done, or 1006)
        self.missing_end_stream = False  # closing handshake over, but no END_STREAM within END_GRACE s
        self.messages = asyncio.Queue()
        self.parts = []
        self.pings, self.pongs = [], []
        self.close_frame = None  # (code, reason) of the server's close frame
        self.close_frame_at = None
        self.close_code = self.close_reason = None  # as wsproto reports the end (1006: no close frame)
        self.data_after_close = 0
        self.received_frames_bytes = 0

    @property
    def dead(self):
        return self.local_reset is not None or self.remote_reset is not None or self.conn.lost is not None

    # ---- from the connection's reader (synchronous) ----

    def on_response(self, headers):
        self.headers = {k.decode(): v.decode() for k, v in headers}
        self.status = int(self.headers.get(":status", "0"))
        if self.status == 200:
            self.extensions_header = self.headers.get("sec-websocket-extensions")
            accepted = split_comma_header(self.extensions_header.encode()) if self.extensions_header else []
            try:
                exts = client_extensions_handshake(accepted, [PerMessageDeflate()])
            except Exception as e:  # an extension we did not offer
                self.response.set_exception(RuntimeError(f"{self.path}: bad sec-websocket-extensions: {e}"))
                return
            self.negotiated = [e.name for e in exts]
            self.ws = Connection(ConnectionType.CLIENT, extensions=exts)
        if not self.response.done():
            self.response.set_result(self.status)

    def on_data(self, data):
        self.received_frames_bytes += len(data)
        if self.ws is None or self.ws.state is ConnectionState.CLOSED:
            self.data_after_close += len(data)
            return
        self.ws.receive_data(data)
        self._ws_events()

    def _ws_events(self):
        for ev in self.ws.events():
            if isinstance(ev, (TextMessage, BytesMessage)):
                self.parts.append(ev.data)
                if ev.message_finished:
                    m = "".join(self.parts) if isinstance(ev, TextMessage) else b"".join(self.parts)
                    self.parts = []
                    self.messages.put_nowait(m)
            elif isinstance(ev, Ping):
                self.pings.append(bytes(ev.payload))
                if self.ws.state is ConnectionState.OPEN:
                    self.queue(self.ws.send(ev.response()))
            elif isinstance(ev, Pong):
                self.pongs.append(bytes(ev.payload))
            elif isinstance(ev, CloseConnection):
                if ev.code != 1006:
                    self.close_frame = (ev.code, ev.reason or "")
                    self.close_frame_at = time.monotonic()
                if self.close_code is None:
                    self.close_code, self.close_reason = ev.code, ev.reason or ""
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.queue(self.ws.send(ev.response()))
                if self.ws.state is ConnectionState.CLOSED:
                    # The closing handshake is over: nothing more from us.
                    self.end_pending = True
                    self.conn.flush(self)
                    self.ws_closed.set()
                self.messages.put_nowait(Closed())

    def on_end(self, reset=None):
        """The server's half ended: END_STREAM (reset None) or RST_STREAM."""
        if reset is None:
            self.remote_ended = True
        else:
            self.remote_reset = reset
            self.out.clear()
            self.drained.set()
        if self.ws is not None and self.ws.state is not ConnectionState.CLOSED:
            self.ws.receive_data(None)  # 1006: no close frame
            self._ws_events()
        if not self.response.done():
            self.response.set_exception(RuntimeError(
                f"{self.path}: stream {'reset (' + str(reset) + ')' if reset is not None else 'ended'} before a response"))
        self.ws_closed.set()
        self.done.set()

    # ---- from the test ----

    def queue(self, data):
        if data and not self.dead:
            self.out.append(memoryview(data))
            self.drained.clear()
            self.conn.flush(self)

    async def write(self, data):
        self.queue(data)
        await self.conn.drain()
        await self.drained.wait()

    async def send(self, m):
        if self.ws.state is not ConnectionState.OPEN:
            raise Closed(f"{self.path}: WebSocket is {self.ws.state.name}")
        await self.write(self.ws.send(Message(data=m)))

    async def recv(self, timeout=STEP_TIMEOUT):
        m = await asyncio.wait_for(self.messages.get(), timeout)
        if isinstance(m, Closed):
            self.messages.put_nowait(m)  # later calls see it too
            raise Closed(f"{self.path}: closed with {self.close_code} {self.close_reason!r}")
        return m

    async def ping(self, payload):
        await self.write(self.ws.send(Ping(payload=payload)))

    async def close(self, code, reason=""):
        if self.ws.state is ConnectionState.OPEN:
            await self.write(self.ws.send(CloseConnection(code=code, reason=reason)))

    def reset(self, code=h2.errors.ErrorCodes.CANCEL):
        """RST_STREAM: the stream's end without a close frame (the TCP RST of HTTP/1.1)."""
        self.local_reset = int(code)
        self.out.clear()
        self.drained.set()
        self.conn.h2.reset_stream(self.sid, error_code=code)
        self.conn.write_out()
        if self.ws is not None and self.ws.state is not ConnectionState.CLOSED:
            self.ws.receive_data(None)
            self._ws_events()
        self.ws_closed.set()
        self.done.set()

    async def wait_closed(self, timeout=10):
        """Until the WebSocket is over (TimeoutError after `timeout` s), then at
        most END_GRACE s for the server's END_STREAM (missing_end_stream if it
        does not come)."""
        await asyncio.wait_for(self.ws_closed.wait(), timeout)
        try:
            await asyncio.wait_for(self.done.wait(), END_GRACE)
        except asyncio.TimeoutError:
            self.missing_end_stream = True

    def summary(self):
        return {
            "stream_id": self.sid,
            "close_frame": list(self.close_frame) if self.close_frame else None,
            "end_stream_from_server": self.remote_ended,
            "missing_end_stream": self.missing_end_stream,
            "rst_stream_from_server": self.remote_reset,
            "end_stream_sent": self.local_ended,
            "rst_stream_sent": self.local_reset,
        }


class H2Client:
    """One HTTP/2 connection (h2c prior knowledge, or TLS with ALPN h2)."""

    def __init__(self, url, ca=None, deflate=True):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "wss" else 80)
        self.tls = u.scheme == "wss"
        self.scheme = b"https" if self.tls else b"http"
        self.authority = f"{u.hostname}:{self.port}".encode()
        self.base = u.path or "/"
        self.ca = ca
        self.deflate = deflate
        self.streams = {}
        self.tcp_connections = 0
        self.lost = None
        self.settings_seen = asyncio.Event()
        self.server_settings = {}
        self.goaway = None
        self.alpn = None

    async def connect(self):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca) if self.ca else ssl._create_unverified_context()
            if not self.ca:
                ctx.check_hostname = False
            ctx.set_alpn_protocols(["h2"])
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=ctx, server_hostname=self.host if ctx else None), 10)
        self.tcp_connections += 1
        if ctx:
            self.alpn = self.writer.get_extra_info("ssl_object").selected_alpn_protocol()
            if self.alpn != "h2":
                raise RuntimeError(f"TLS: the server chose ALPN {self.alpn!r}, not h2")
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.write_out()
        self.reader_task = asyncio.create_task(self.read_loop())
        try:
            await asyncio.wait_for(self.settings_seen.wait(), 5)
        except asyncio.TimeoutError:
            raise RuntimeError(f"no SETTINGS frame from the server within 5 s (lost: {self.lost})") from None
        ecp = self.server_settings.get(int(ECP))
        if ecp != 1:
            raise RuntimeError(
                "the server's SETTINGS do not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL = "
                f"{ecp if ecp is not None else 'absent'}; RFC 8441 needs 1); its settings: {self.server_settings}")

    def write_out(self):
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self):
        try:
            await self.writer.drain()
        except ConnectionError:
            pass

    def flush(self, s):
        """Sends what the stream has queued, as far as the windows allow."""
        while s.out and not s.dead and not s.local_ended:
            try:
                win = self.h2.local_flow_control_window(s.sid)
            except h2.exceptions.StreamClosedError:
                s.out.clear()
                break
            if win <= 0:
                break
            chunk = s.out[0]
            n = min(win, self.h2.max_outbound_frame_size, len(chunk))
            self.h2.send_data(s.sid, bytes(chunk[:n]))
            if n == len(chunk):
                s.out.popleft()
            else:
                s.out[0] = chunk[n:]
        if not s.out:
            if s.end_pending and not s.local_ended and not s.dead:
                try:
                    self.h2.end_stream(s.sid)
                    s.local_ended = True
                except h2.exceptions.StreamClosedError:
                    pass
            s.drained.set()
        self.write_out()

    async def read_loop(self):
        try:
            while True:
                data = await self.reader.read(1 << 18)
                if not data:
                    self.lost = "the server closed the TCP connection"
                    break
                for ev in self.h2.receive_data(data):
                    self.on_event(ev)
                self.write_out()
        except (ConnectionError, OSError) as e:
            self.lost = f"{type(e).__name__}: {e}"
        except h2.exceptions.ProtocolError as e:
            self.lost = f"HTTP/2 protocol error: {type(e).__name__}: {e}"
        except Exception as e:  # a bug here: report it, end every stream
            self.lost = f"reader failed: {type(e).__name__}: {e}"
        finally:
            self.settings_seen.set()
            for s in self.streams.values():
                if not s.done.is_set():
                    s.on_end(reset=-1)

    def on_event(self, ev):
        if DEBUG:
            print(f"h2 event: {str(ev)[:200]}", file=sys.stderr, flush=True)
        s = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            for code, ch in ev.changed_settings.items():
                self.server_settings[int(code)] = ch.new_value
            self.settings_seen.set()
            for st in self.streams.values():  # INITIAL_WINDOW_SIZE may have grown
                self.flush(st)
        elif isinstance(ev, h2.events.ResponseReceived) and s:
            s.on_response(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if ev.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
            if s:
                s.on_data(ev.data)
        elif isinstance(ev, h2.events.StreamEnded) and s:
            s.on_end()
        elif isinstance(ev, h2.events.StreamReset) and s:
            if ev.remote_reset:
                s.on_end(reset=int(ev.error_code))
        elif isinstance(ev, h2.events.WindowUpdated):
            targets = [s] if s else list(self.streams.values())
            for st in targets:
                self.flush(st)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = {"error_code": int(ev.error_code), "last_stream_id": ev.last_stream_id,
                           "data": (ev.additional_data or b"").decode(errors="replace")}

    async def websocket(self, path):
        """Opens a WebSocket on a new stream; returns it once the 200 arrived."""
        if self.lost:
            raise RuntimeError(f"the HTTP/2 connection is gone: {self.lost}")
        sid = self.h2.get_next_available_stream_id()
        s = WsStream(self, sid, path)
        self.streams[sid] = s
        headers = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", self.scheme),
            (b":path", path.encode()),
            (b":authority", self.authority),
            (b"sec-websocket-version", b"13"),
        ]
        if self.deflate:
            offer = "permessage-deflate; " + PerMessageDeflate().offer()
            headers.append((b"sec-websocket-extensions", offer.encode()))
        self.h2.send_headers(sid, headers)
        self.write_out()
        status = await asyncio.wait_for(s.response, 10)
        if status != 200:
            raise RuntimeError(f"{path}: the server answered the extended CONNECT with {status}, want 200 "
                               f"(headers: {s.headers})")
        if s.ws is None:
            raise RuntimeError(f"{path}: no WebSocket after the 200")
        return s

    async def close(self):
        try:
            self.h2.close_connection()
            self.write_out()
            await asyncio.wait_for(self.drain(), 2)
        except Exception:
            pass
        self.writer.close()
        self.reader_task.cancel()


# ---- the tests (mirroring interop/python/peer.py) ------------------------------------


def setting_name(code):
    try:
        return h2.settings.SettingCodes(code).name
    except ValueError:
        return str(code)


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


def console_line(console, line):
    if console == "-":
        return
    # The FIFO is held open by the script: opening it for writing does not block.
    with open(console, "w") as f:
        f.write(line + "\n")


async def echo_all(ws, sent):
    async def send_all():
        for m in sent:
            await ws.send(m)

    async def recv_all():
        return [await ws.recv() for _ in sent]

    _, got = await asyncio.wait_for(asyncio.gather(send_all(), recv_all()), STEP_TIMEOUT)
    return got


async def close_normally(ws, errors, what):
    await ws.close(1000)
    try:
        await ws.wait_closed(10)
    except asyncio.TimeoutError:
        errors.append(f"{what}: the stream did not end within 10 s of our close 1000")
        ws.reset()
    if ws.close_frame is None or ws.close_frame[0] != 1000:
        errors.append(f"{what}: our close 1000 was answered with {ws.close_frame}")


def stream_record(ws):
    return {"path": ws.path, "extensions": ws.extensions_header, "negotiated": ws.negotiated, **ws.summary()}


async def client_suite(conn, console, report):
    errors = report["errors"]
    sent = messages.texts() + messages.binaries()
    ws = await conn.websocket(conn.base + "suite")
    report["extensions"] = ws.extensions_header
    report["negotiated"] = ws.negotiated
    compare(sent, await echo_all(ws, sent), errors, "suite")
    report["messages"] = len(sent)
    report["payload"] = sum(len(raw(m)) for m in sent)

    ping = {"payload": PING_PAYLOAD.decode(), "pong": False}
    t0 = time.monotonic()
    await ws.ping(PING_PAYLOAD)
    if await wait_until(lambda: PING_PAYLOAD in ws.pongs, 5):
        ping["pong"] = True
        ping["rtt_ms"] = round(1000 * (time.monotonic() - t0), 3)
    else:
        errors.append(f"no pong carrying our ping's payload within 5 s (pongs: {ws.pongs})")
    report["ping"] = ping

    console_line(console, f"/ping {CONSOLE_PING}")
    seen = await wait_until(lambda: CONSOLE_PING.encode() in ws.pings, 5)
    keepalive = await wait_until(lambda: any(p != CONSOLE_PING.encode() for p in ws.pings), 5)
    report["wsx_ping"] = {"payload": CONSOLE_PING, "seen": seen}
    report["keepalive_pings"] = sum(p != CONSOLE_PING.encode() for p in ws.pings)
    if not seen:
        errors.append(f"the console's ping ({CONSOLE_PING}) did not arrive")
    if not keepalive:
        errors.append("no keepalive ping from the server within 5 s (--ping-interval 1)")
    await close_normally(ws, errors, "/suite")
    report["streams"].append(stream_record(ws))


async def client_big(conn, report):
    errors = report["errors"]
    sent = messages.bigs()
    report["big"] = [{"kind": kind(m), "bytes": len(raw(m)), "sha256": messages.sha256(m)} for m in sent]
    started = time.monotonic()
    ws = await conn.websocket(conn.base + "big")
    got = await echo_all(ws, sent)
    report["big_secs"] = round(time.monotonic() - started, 2)
    compare(sent, got, errors, "16 MiB")
    for entry, s, g in zip(report["big"], sent, got):
        entry["echo_ok"] = s == g
        entry["echo_sha256"] = messages.sha256(g)
    await close_normally(ws, errors, "/big")
    report["streams"].append(stream_record(ws))


async def client_oversize(conn, report):
    msg = messages.oversize()
    out = {"bytes": len(msg), "echoes": 0}
    report["oversize"] = out
    ws = await conn.websocket(conn.base + "oversize")
    started = time.monotonic()
    try:
        await asyncio.wait_for(ws.send(msg), STEP_TIMEOUT)
    except Closed:
        pass  # the server closed while we were still sending
    out["send_secs"] = round(time.monotonic() - started, 3)
    try:
        while True:
            await ws.recv(10)
            out["echoes"] += 1
    except Closed:
        out["secs"] = round(time.monotonic() - started, 3)
    except asyncio.TimeoutError:
        report["errors"].append("oversize: the server did not close the WebSocket within 10 s")
        await ws.close(1000)
    try:
        await ws.wait_closed(10)
    except asyncio.TimeoutError:
        report["errors"].append("oversize: the stream did not end within 10 s of the close")
        ws.reset()
    out["saw_code"], out["saw_reason"] = ws.close_code, ws.close_reason
    out["close_frame_secs"] = None if ws.close_frame_at is None else round(ws.close_frame_at - started, 3)
    report["streams"].append(stream_record(ws))


async def client_close(conn, console, case, initiator, code, reason, report):
    out = {"case": case, "initiator": initiator, "code": code, "reason": reason}
    ws = await conn.websocket(conn.base + "close/" + case)
    await ws.send("hello")
    got = await ws.recv(10)
    if got != "hello":
        report["errors"].append(f"close {case}: the echo of hello was {got!r}")
    if initiator == "peer":
        if code is None:
            ws.reset()
        else:
            await ws.close(code, reason)
    else:
        console_line(console, "/drop" if code is None else f"/close {code} {reason}".rstrip())
        try:
            while True:
                await ws.recv(10)
        except (Closed, asyncio.TimeoutError):
            pass
    try:
        await ws.wait_closed(10)
    except asyncio.TimeoutError:
        report["errors"].append(f"close {case}: the stream did not end within 10 s")
        ws.reset()
    out["saw_code"], out["saw_reason"] = ws.close_code, ws.close_reason
    out.update(ws.summary())
    out["clean"] = ws.close_frame is not None and ws.remote_ended and ws.local_ended
    report["closes"].append(out)
    report["streams"].append(stream_record(ws))


async def client_after(conn, report):
    """One more echo on the same connection after all the resets and drops."""
    ws = await conn.websocket(conn.base + "after")
    await ws.send("still there?")
    got = await ws.recv(10)
    report["after"] = got == "still there?"
    if not report["after"]:
        report["errors"].append(f"/after: echo {got!r}")
    await close_normally(ws, report["errors"], "/after")
    report["streams"].append(stream_record(ws))


async def client(base, console, ca, phases, deflate=True):
    report = {"library": LIBRARY, "http": "2", "url": base, "deflate_offered": deflate, "errors": [], "closes": [],
              "streams": []}
    errors = report["errors"]
    conn = H2Client(base, ca, deflate)
    started = time.monotonic()
    try:
        await conn.connect()
        report["alpn"] = conn.alpn
        report["server_settings"] = {setting_name(k): v for k, v in conn.server_settings.items()}
        report["enable_connect_protocol"] = conn.server_settings.get(int(ECP))
        if "1" in phases:
            t = time.monotonic()
            jobs = [client_suite(conn, console, report), client_big(conn, report), client_oversize(conn, report)]
            jobs += [client_close(conn, console, *c[:4], report) for c in CLOSE_CASES if c[4] == 1]
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    errors.append(f"phase 1: {type(r).__name__}: {r}")
            report["concurrent_streams"] = len(jobs)
            report["phase1_secs"] = round(time.monotonic() - t, 2)
        if "2" in phases:
            await asyncio.sleep(0.3)  # the phase-1 WebSockets are gone on the server too
            for c in CLOSE_CASES:
                if c[4] == 2:
                    try:
                        await client_close(conn, console, *c[:4], report)
                    except Exception as e:
                        errors.append(f"close {c[0]}: {type(e).__name__}: {e}")
        if "3" in phases:
            await client_after(conn, report)
    except Exception as e:  # report whatever happened, with what got done
        errors.append(f"{type(e).__name__}: {e}")
    report["tcp_connections"] = conn.tcp_connections
    report["streams_opened"] = len(conn.streams)
    report["connection_lost"] = conn.lost
    report["goaway"] = conn.goaway
    if conn.lost:
        errors.append(f"the HTTP/2 connection was lost: {conn.lost}")
    if conn.goaway:
        errors.append(f"the server sent GOAWAY: {conn.goaway}")
    if conn.tcp_connections > 1:
        errors.append(f"{conn.tcp_connections} TCP connections, want 1")
    report["secs"] = round(time.monotonic() - started, 2)
    if hasattr(conn, "writer"):
        await conn.close()
    report["ok"] = not errors
    print(json.dumps(report), flush=True)
    return report["ok"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="ws://HOST:PORT/ (h2c) or wss://HOST:PORT/ (TLS, ALPN h2)")
    ap.add_argument("console", help="the server's console FIFO, or - for none")
    ap.add_argument("--ca", help="trust this certificate (wss://); default: no certificate check")
    ap.add_argument("--phases", default="123", help="which phases to run (default 123)")
    ap.add_argument("--no-deflate", action="store_true", help="offer no permessage-deflate (every message on the wire as it is)")
    args = ap.parse_args()
    base = args.base if args.base.endswith("/") else args.base + "/"
    ok = asyncio.run(client(base, args.console, args.ca, args.phases, not args.no_deflate))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

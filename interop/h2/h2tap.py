"""interop/wiretap.py for HTTP/2: a loopback TCP relay that counts the bytes
of each WebSocket on an h2c connection (RFC 8441: every WebSocket a CONNECT
stream, many on one TCP connection), so that scripts/interop-h2 checks
permessage-deflate on the wire per WebSocket, as scripts/interop does.

    python h2tap.py TARGET_PORT        (needs `hpack`: interop/h2/requirements.txt)

Listens on a free 127.0.0.1 port and prints `listening PORT`; relays every
connection to 127.0.0.1:TARGET_PORT, reading the HTTP/2 frames both ways
(HPACK-decoding every header block, to know each stream's request). When a
connection ends it prints one JSON line per stream, with wiretap.py's keys:

  {"websocket": CONNECT with :protocol websocket, "path": its :path,
   "up"/"down": bytes of the stream's frames (9-byte headers included) each way,
   "frames_up"/"frames_down": the WebSocket frames in its DATA (wiretap.Frames),
   "http": "2", "tcp": the connection's number, "stream": its id,
   "method", "protocol", "status": the answer's :status,
   "end_up"/"end_down": END_STREAM sent that way, "rst_up"/"rst_down": the
   RST_STREAM error code sent that way (null: none)}

then one line for the connection itself: {"websocket": false, "connection":
true, "http": "2", "tcp", "up", "down" (everything), "streams", "goaway_up",
"goaway_down", "enable_connect_protocol" (the server's
SETTINGS_ENABLE_CONNECT_PROTOCOL)}. A connection that does not open with the
HTTP/2 preface is reported as wiretap.py would, with "http": "1.1". A reset
(RST) from one side is passed on as a reset; an orderly end (FIN) as one
("ends": which direction ended first, and how). H2TAP_TRACE=1 logs every
frame on stderr.
"""

import asyncio
import itertools
import json
import os
import socket
import struct
import sys

import hpack

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from wiretap import Frames  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x7, 0x9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20
ERROR_CODES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
CONNECTIONS = itertools.count(1)
# H2TAP_TRACE=1: every frame (direction, type, stream, flags, length) on stderr.
TRACE = os.environ.get("H2TAP_TRACE") == "1"
FRAME_NAMES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
               6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION"}


def error_name(code):
    return ERROR_CODES[code] if code < len(ERROR_CODES) else f"0x{code:x}"


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.req = {}
        self.status = None
        self.bytes = {"up": 0, "down": 0}
        self.frames = {"up": Frames(), "down": Frames()}
        for f in self.frames.values():
            f.in_head = False  # DATA carries WebSocket frames from its first byte
        self.end = {"up": False, "down": False}
        self.rst = {"up": None, "down": None}

    def line(self, tcp):
        ws = self.req.get(":method") == "CONNECT" and self.req.get(":protocol") == "websocket"
        return {"websocket": ws, "path": self.req.get(":path"), "up": self.bytes["up"], "down": self.bytes["down"],
                "frames_up": self.frames["up"].counts, "frames_down": self.frames["down"].counts,
                "http": "2", "tcp": tcp, "stream": self.sid, "method": self.req.get(":method"),
                "protocol": self.req.get(":protocol"), "status": self.status,
                "end_up": self.end["up"], "end_down": self.end["down"],
                "rst_up": self.rst["up"], "rst_down": self.rst["down"]}


class Connection:
    """The HTTP/2 frames of one connection, fed by both directions."""

    def __init__(self):
        self.tcp = next(CONNECTIONS)
        self.streams = {}
        self.buf = {"up": bytearray(), "down": bytearray()}
        self.decoder = {"up": hpack.Decoder(), "down": hpack.Decoder()}
        self.block = {"up": None, "down": None}  # (stream, fragments) until END_HEADERS
        self.total = {"up": 0, "down": 0}
        self.preface = None  # True/False once the first 24 bytes up are known
        self.head = b""  # HTTP/1.1: the request head, as wiretap.py keeps it
        self.h1_frames = {"up": Frames(), "down": Frames()}
        self.goaway = {"up": None, "down": None}
        self.enable_connect = None
        self.error = None
        self.ends = []  # how each direction ended, in order: "up: FIN", "down: RST"

    def stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = Stream(sid)
        return self.streams[sid]

    def feed(self, way, data):
        self.total[way] += len(data)
        if self.preface is None:
            if way == "down":
                self.buf[way] += data
                return
            self.head += data
            if len(self.head) < len(PREFACE) and PREFACE.startswith(self.head):
                return
            self.preface = self.head.startswith(PREFACE)
            data, self.head = (self.head[len(PREFACE):], b"") if self.preface else (self.head, self.head[:4096])
            early, self.buf["down"] = bytes(self.buf["down"]), bytearray()
            if early:
                self.feed_parsed("down", early)
        elif not self.preface and way == "up" and len(self.head) < 4096:
            self.head += data[: 4096 - len(self.head)]
        self.feed_parsed(way, data)

    def feed_parsed(self, way, data):
        if not self.preface:
            self.h1_frames[way].feed(data)
            return
        if self.error:
            return
        try:
            self.frames(way, data)
        except Exception as e:  # the relay goes on; the report says why the counts stop
            self.error = f"{way}: {type(e).__name__}: {e}"

    def frames(self, way, data):
        buf = self.buf[way]
        buf += data
        off = 0
        while len(buf) - off >= 9:
            length = int.from_bytes(buf[off:off + 3], "big")
            if len(buf) - off < 9 + length:
                break
            ftype, flags = buf[off + 3], buf[off + 4]
            sid = int.from_bytes(buf[off + 5:off + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[off + 9:off + 9 + length])
            off += 9 + length
            self.frame(way, ftype, flags, sid, payload)
        del buf[:off]

    def frame(self, way, ftype, flags, sid, payload):
        if TRACE:
            print(f"tcp {self.tcp} {way:>4} {FRAME_NAMES.get(ftype, ftype)} stream={sid} flags=0x{flags:x} "
                  f"len={len(payload)}" + (f" {payload[:8].hex()}" if ftype in (RST_STREAM, GOAWAY) else ""),
                  file=sys.stderr, flush=True)
        if sid:
            st = self.stream(sid)
            st.bytes[way] += 9 + len(payload)
        if ftype == DATA:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            st.frames[way].feed(payload)
            st.end[way] |= bool(flags & END_STREAM)
        elif ftype == HEADERS:
            frag = payload
            if flags & PADDED:
                frag = frag[1:len(frag) - frag[0]]
            if flags & PRIORITY:
                frag = frag[5:]
            st.end[way] |= bool(flags & END_STREAM)
            self.block[way] = (st, [frag])
            if flags & END_HEADERS:
                self.headers(way)
        elif ftype == CONTINUATION and self.block[way] is not None:
            self.block[way][1].append(payload)
            if flags & END_HEADERS:
                self.headers(way)
        elif ftype == RST_STREAM and sid:
            st.rst[way] = error_name(int.from_bytes(payload[:4], "big"))
        elif ftype == SETTINGS and not flags & 0x1:  # not an ACK
            for k in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[k:k + 6])
                if ident == 0x1:  # HEADER_TABLE_SIZE: the other side's encoder may use this much
                    self.decoder["down" if way == "up" else "up"].max_allowed_table_size = value
                elif ident == 0x8 and way == "down":
                    self.enable_connect = value
        elif ftype == GOAWAY:
            self.goaway[way] = error_name(int.from_bytes(payload[4:8], "big"))

    def headers(self, way):
        st, frags = self.block[way]
        self.block[way] = None
        fields = self.decoder[way].decode(b"".join(frags), raw=False)
        if way == "up":
            st.req = {k: v for k, v in fields if k.startswith(":")}
        else:
            st.status = next((int(v) for k, v in fields if k == ":status"), st.status)

    def lines(self):
        if not self.preface:
            head = self.head.lower()
            first = self.head.split(b"\r\n", 1)[0].split(b" ")
            is_ws = b"upgrade: websocket" in head or b"upgrade:websocket" in head
            line = {"websocket": is_ws, "path": first[1].decode(errors="replace") if len(first) > 1 else "",
                    "up": self.total["up"], "down": self.total["down"], "http": "1.1", "tcp": self.tcp}
            if is_ws:
                line.update(frames_up=self.h1_frames["up"].counts, frames_down=self.h1_frames["down"].counts)
            return [line]
        out = [self.streams[sid].line(self.tcp) for sid in sorted(self.streams)]
        out.append({"websocket": False, "connection": True, "http": "2", "tcp": self.tcp,
                    "up": self.total["up"], "down": self.total["down"], "streams": len(self.streams),
                    "goaway_up": self.goaway["up"], "goaway_down": self.goaway["down"],
                    "enable_connect_protocol": self.enable_connect, "ends": self.ends,
                    "parse_error": self.error})
        return out


async def main(target_port):
    async def relay(reader, writer, conn, way):
        reset = False
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except ConnectionResetError:
                    reset = True
                    break
                if not data:
                    break
                conn.feed(way, data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            conn.ends.append(f"{way}: {'RST' if reset else 'FIN'}")
            if TRACE:
                print(f"tcp {conn.tcp} {way:>4} {conn.ends[-1]}", file=sys.stderr, flush=True)
            try:
                if reset:
                    # Pass a reset on as a reset (SO_LINGER 0: RST), not as a FIN.
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                elif writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass

    async def handle(c_reader, c_writer):
        conn = Connection()
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(relay(c_reader, s_writer, conn, "up"), relay(s_reader, c_writer, conn, "down"))
        for w in (c_writer, s_writer):
            w.close()
        for line in conn.lines():
            print(json.dumps(line), flush=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

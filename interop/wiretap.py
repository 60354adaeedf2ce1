"""A loopback TCP relay that counts bytes on the wire, to check that
permessage-deflate really compressed what each side sent.

    python3 wiretap.py TARGET_PORT

Listens on a free 127.0.0.1 port and prints `listening PORT`; relays every
connection to 127.0.0.1:TARGET_PORT. When a connection ends it prints one
JSON line: {"websocket": true if the request was an Upgrade, "path": the
request path, "up": bytes client -> server, "down": bytes server -> client,
"frames_up"/"frames_down": {"data": first frames of messages, "continuation":
continuation frames, "control": control frames, "rsv1": frames with RSV1}}.
Frames are counted from their headers after the HTTP head (payloads are
skipped, not buffered). A reset (RST) from one side is passed on as a reset;
an orderly end (FIN) as one. Standard library only.
"""

import asyncio
import json
import socket
import struct
import sys


class Frames:
    """Counts WebSocket frames in one direction of a byte stream."""

    def __init__(self):
        self.head = b""  # until the end of the HTTP head
        self.in_head = True
        self.buf = b""  # a partial frame header
        self.skip = 0  # payload bytes still to pass over
        self.counts = {"data": 0, "continuation": 0, "control": 0, "rsv1": 0}

    def feed(self, data):
        if self.in_head:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                self.head = self.head[-3:]
                return
            self.in_head = False
            data, self.head = self.head[end + 4 :], b""
        while data:
            if self.skip:
                n = min(self.skip, len(data))
                self.skip -= n
                data = data[n:]
                continue
            self.buf += data
            data = b""
            b = self.buf
            if len(b) < 2:
                return
            need = 2 + {126: 2, 127: 8}.get(b[1] & 0x7F, 0) + (4 if b[1] & 0x80 else 0)
            if len(b) < need:
                return
            ln = b[1] & 0x7F
            if ln == 126:
                ln = int.from_bytes(b[2:4], "big")
            elif ln == 127:
                ln = int.from_bytes(b[2:10], "big")
            op = b[0] & 0x0F
            key = "continuation" if op == 0 else "control" if op >= 8 else "data"
            self.counts[key] += 1
            self.counts["rsv1"] += 1 if b[0] & 0x40 else 0
            self.skip = ln
            data, self.buf = b[need:], b""


async def main(target_port):
    async def relay(reader, writer, counter, key, frames):
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
                if key == "up" and counter["head"] is not None and len(counter["head"]) < 4096:
                    counter["head"] += data[: 4096 - len(counter["head"])]
                counter[key] += len(data)
                frames.feed(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
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
        counter = {"up": 0, "down": 0, "head": b""}
        fup, fdown = Frames(), Frames()
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(
            relay(c_reader, s_writer, counter, "up", fup),
            relay(s_reader, c_writer, counter, "down", fdown),
        )
        for w in (c_writer, s_writer):
            w.close()
        head = counter["head"].lower()
        is_ws = b"upgrade: websocket" in head or b"upgrade:websocket" in head
        first = counter["head"].split(b"\r\n", 1)[0].split(b" ")
        path = first[1].decode(errors="replace") if len(first) > 1 else ""
        line = {"websocket": is_ws, "path": path, "up": counter["up"], "down": counter["down"]}
        if is_ws:
            line.update(frames_up=fup.counts, frames_down=fdown.counts)
        print(json.dumps(line), flush=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

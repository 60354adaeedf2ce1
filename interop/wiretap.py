"""A loopback TCP relay that counts bytes on the wire, to check that
permessage-deflate really compressed what each side sent.

    python3 wiretap.py TARGET_PORT

Listens on a free 127.0.0.1 port and prints `listening PORT`; relays every
connection to 127.0.0.1:TARGET_PORT. When a connection ends it prints one
JSON line: {"websocket": true if the request was an Upgrade, "path": the
request's path, "up": bytes client -> server, "down": bytes server -> client}.
Standard library only.
"""

import asyncio
import json
import sys


async def main(target_port):
    async def relay(reader, writer, counter, key):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if key == "up" and counter["head"] is not None and len(counter["head"]) < 4096:
                    counter["head"] += data[: 4096 - len(counter["head"])]
                counter[key] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass

    async def handle(c_reader, c_writer):
        counter = {"up": 0, "down": 0, "head": b""}
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(
            relay(c_reader, s_writer, counter, "up"),
            relay(s_reader, c_writer, counter, "down"),
        )
        for w in (c_writer, s_writer):
            w.close()
        head = counter["head"].lower()
        is_ws = b"upgrade: websocket" in head or b"upgrade:websocket" in head
        request_line = counter["head"].split(b"\r\n", 1)[0].split(b" ")
        path = request_line[1].decode("latin-1") if len(request_line) == 3 else None
        print(json.dumps({"websocket": is_ws, "path": path, "up": counter["up"], "down": counter["down"]}), flush=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

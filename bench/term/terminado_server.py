"""terminado (Jupyter's terminal server) for bench/term: one program, loopback.

    python terminado_server.py unique|named PORT CMD [ARGS...]

unique: a new terminal per WebSocket at /websocket (UniqueTermManager);
named: one terminal shared by every WebSocket at /websocket/NAME
(NamedTermManager). Prints `listening PORT` when ready.
"""

import sys

import tornado.ioloop
import tornado.web
from terminado import NamedTermManager, TermSocket, UniqueTermManager


def main() -> None:
    mode, port, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if mode == "unique":
        manager = UniqueTermManager(shell_command=cmd)
        route = r"/websocket"
    else:
        manager = NamedTermManager(shell_command=cmd, max_terminals=4)
        route = r"/websocket/(\w+)"
    app = tornado.web.Application([(route, TermSocket, {"term_manager": manager})])
    app.listen(port, "127.0.0.1")
    print(f"listening {port}", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()

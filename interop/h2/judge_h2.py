"""Verdict of one HTTP/2 client of scripts/interop-h2 against `wsx serve --h2c
--console --ping-interval 1`, or of the wsx client against an HTTP/2 server:
prints one result line (and the failed checks, and the skipped ones), exits 0
(pass) or 1 (fail).

    judge_h2.py py|undici LABEL REPORT SERVE_LOG METRICS EXPECTED
    judge_h2.py wsx-client LABEL WSX_REPORT SERVER_REPORT TAP EXPECTED

wsx-client: `interop_client --http2` (crates/wsx-testkit) against
interop/h2/hypercorn_echo.py through interop/h2/h2tap.py, judged as
scripts/interop judges the wsx client against its HTTP/1.1 peer servers
(interop/judge.py's judge_wsx_client: the suite, 16 MiB, the 1009, pings,
closes, compression on the wire per WebSocket), the checks the server says it
cannot take part in skipped with its reason (an ASGI server cannot ping or
drop a connection without a close frame), plus HTTP/2: every WebSocket a
CONNECT stream (:protocol websocket, 200) of one h2c TCP connection, as the
wsx client (is_http2 per socket), hypercorn (the ASGI scope's http_version)
and the tap all say; the server advertised RFC 8441; no GOAWAY, no stream
reset with an error code; the wsx client ended the connection, not the server.

REPORT: the client's JSON line (py_client.py, undici_client.mjs); SERVE_LOG:
the log of `wsx serve` (one `open ... http="2 (CONNECT)"` and one `close ...
code=N` line per WebSocket, the console's answers); METRICS: its /metrics at
the end; EXPECTED: what interop/messages.py printed. Each check failing says
which one it was. Uses the helpers of interop/judge.py.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from judge import (  # noqa: E402
    CLOSE_CASES as PEER_CLOSE_CASES,
    CONNECTIONS,
    DEFLATE,
    DROPPED_BY_CONSOLE,
    PROMPT_SECS,
    Verdict,
    console_lines,
    json_lines,
    judge_wsx_client,
    last_json,
    metric,
    print_verdict,
    serve_closes,
)

WSX_REASON = "bye from wsx"
CLOSE_CASES = [
    ("peer-1000", "peer", 1000, ""),
    ("peer-4000", "peer", 4000, None),  # None: the client's own reason
    ("peer-drop", "peer", None, ""),
    ("wsx-1000", "wsx", 1000, ""),
    ("wsx-4001", "wsx", 4001, WSX_REASON),
    ("wsx-drop", "wsx", None, ""),
]
PATHS = ["/suite", "/big", "/oversize", "/after"] + [f"/close/{c[0]}" for c in CLOSE_CASES]
# undici's CloseEvent comes when its stream is closed, and undici never ends its
# half of the stream (no END_STREAM after the closing handshake): wsx serve
# resets the stream 5 s after its own END_STREAM. The 1009's CloseEvent may
# come that much later.
UNDICI_CLOSE_GRACE = 5.5


def serve_opens(log_path):
    """[(path, extensions, http)] from the `open` lines of `wsx serve`."""
    out = []
    try:
        for line in open(log_path, errors="replace"):
            m = re.search(r' open peer=\S+ path="([^"]*)" extensions="([^"]*)"(?: http="([^"]*)")?', line)
            if m:
                out.append((m.group(1), m.group(2), m.group(3)))
    except OSError:
        pass
    return out


def wsx_client(label, wsx_path, server_path, tap_path, expected_path):
    """The wsx client over HTTP/2 against an HTTP/2 server (hypercorn_echo.py)."""
    expected = json.load(open(expected_path))
    v = Verdict()
    rep = last_json(wsx_path) or {}
    if rep.get("messages") is None:
        # No suite (no HTTP/2 connection, no RFC 8441...): the client's own
        # errors say why; the checks below would only repeat it.
        v.need(False, "interop_client: " + ("; ".join(rep.get("errors") or []) or f"no report (see {wsx_path}.err)")[:900])
        print_verdict(label, v.errors, ["stopped before the suite ran (the later checks skipped)"])
        return 1
    # The checks of scripts/interop's wsx client -> peer server (the compat row: not kept).
    judge_wsx_client(v, wsx_path, server_path, tap_path, expected, os.devnull)

    # ---- HTTP/2: every WebSocket a CONNECT stream of one h2c connection ---------------
    paths = sorted(CONNECTIONS[:3] + [f"/close/{c[0]}" for c in PEER_CLOSE_CASES["wsx-client"]])
    socks = rep.get("sockets") or []
    v.need(rep.get("http") == "2", f"interop_client ran with http {rep.get('http')!r}, want \"2\" (--http2)")
    v.need(sorted(s.get("path") or "" for s in socks) == paths and all(s.get("http") == "2" for s in socks),
           f"the wsx client's sockets {[(s.get('path'), s.get('http')) for s in socks]}, want each of {paths} on HTTP/2 (is_http2)")
    srv = json_lines(server_path)
    versions = sorted({str(s.get("http_version")) for s in srv})
    v.need(srv and versions == ["2"], f"hypercorn's ASGI scopes said http_version {versions}, want \"2\" only")
    tap = json_lines(tap_path)
    conns = [t for t in tap if t.get("connection")]  # one line per HTTP/2 connection
    h1 = [t.get("path") for t in tap if t.get("http") != "2"]  # one per HTTP/1.1 connection
    v.need(len(conns) == 1 and not h1,
           f"TCP connections through the tap: {len(conns)} HTTP/2, {len(h1)} HTTP/1.1 (paths {h1}), want one, HTTP/2")
    ws = [t for t in tap if t.get("websocket")]
    bad = [(t.get("path"), t.get("method"), t.get("protocol"), t.get("status")) for t in ws
           if (t.get("http"), t.get("method"), t.get("protocol"), t.get("status")) != ("2", "CONNECT", "websocket", 200)]
    v.need(sorted(t.get("path") or "" for t in ws) == paths and not bad,
           f"the tap saw the WebSockets {sorted(t.get('path') or '' for t in ws)}, not as CONNECT :protocol websocket "
           f"answered 200 over HTTP/2: {bad}; want {paths}")
    others = [(t.get("stream"), t.get("method"), t.get("path")) for t in tap if t.get("stream") and not t.get("websocket")]
    v.need(not others, f"streams other than WebSockets on the connection: {others}")
    conn = conns[0] if conns else {}
    v.need(conn.get("enable_connect_protocol") == 1,
           f"the server's SETTINGS_ENABLE_CONNECT_PROTOCOL: {conn.get('enable_connect_protocol')}, want 1")
    v.need(conn.get("goaway_up") is None and conn.get("goaway_down") is None,
           f"GOAWAY on the connection: from wsx {conn.get('goaway_up')}, from the server {conn.get('goaway_down')}")
    v.need(conn.get("parse_error") is None, f"the tap could not read the HTTP/2 frames: {conn.get('parse_error')}")
    ends = conn.get("ends") or []
    v.need(ends[:1] == ["up: FIN"], f"the TCP connection ended {ends}, want the wsx client first (FIN) at its exit, "
           f"not the server under it")
    resets = [(t.get("path"), way, t.get(f"rst_{way}")) for t in ws for way in ("up", "down")
              if t.get(f"rst_{way}") not in (None, "NO_ERROR", "CANCEL")]
    v.need(not resets, f"streams reset with an error code: {resets}")
    drop = next((t for t in ws if t.get("path") == "/close/wsx-drop"), {})
    v.need(drop.get("rst_up") == "CANCEL",
           f"/close/wsx-drop: wsx dropped the WebSocket, its stream ended {drop.get('rst_up')!r}, want RST_STREAM CANCEL (RFC 8441's TCP reset)")
    v.facts.append(f"{len(ws)} WebSockets as CONNECT streams of {len(conns)} h2c connection(s) (wsx: is_http2 x"
                   f"{sum(s.get('http') == '2' for s in socks)}, hypercorn: http_version 2 x"
                   f"{sum(str(s.get('http_version')) == '2' for s in srv)})")
    # Not checked, shown: hypercorn ends a stream (END_STREAM, RFC 8441's FIN)
    # only after a close it started; after the others the wsx client waits for
    # it up to its close timeout, then resets the stream (CANCEL).
    ended = [t for t in ws if t.get("end_down")]
    unended = [t for t in ws if not t.get("end_down") and t.get("path") != "/close/wsx-drop"]
    v.facts.append(f"END_STREAM from hypercorn on {len(ended)}/{len(ws)} streams; on {len(unended)} wsx waited for it, "
                   f"then reset {sum(t.get('rst_up') == 'CANCEL' for t in unended)} (CANCEL)")
    print_verdict(label, v.errors, v.facts, v.skipped)
    return 0 if not v.errors else 1


def main():
    if sys.argv[1] == "wsx-client":
        sys.exit(wsx_client(*sys.argv[2:7]))
    kind, label, report_path, log_path, metrics_path, expected_path = sys.argv[1:7]
    expected = json.load(open(expected_path))
    errors, facts = [], []

    def need(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    rep = last_json(report_path)
    if not need(rep is not None, f"no report from the client (see {report_path} and its .err)"):
        rep = {}
    need(not rep.get("errors"), "the client's errors: " + "; ".join(rep.get("errors") or [])[:900])
    need(rep.get("ok") is True, "the client reported failure")

    if rep.get("messages") is None:
        # The client stopped before its suite ran (a failed handshake, no
        # extended CONNECT...): its own errors say why; the checks below would
        # only repeat that the steps did not run.
        print(f"FAIL  {label:<44} stopped before the suite ran (the later checks skipped)")
        for e in errors:
            print(f"      - {e}")
        sys.exit(1)

    # ---- HTTP/2: one TCP connection, every WebSocket a CONNECT stream --------------
    tcp = rep.get("tcp_connections") if kind == "py" else rep.get("tcp_connections_before_drop")
    need(tcp == 1, f"TCP connections used: {tcp}, want 1 (every WebSocket on one HTTP/2 connection)")
    if kind == "py":
        need(rep.get("enable_connect_protocol") == 1,
             f"the server's SETTINGS_ENABLE_CONNECT_PROTOCOL: {rep.get('enable_connect_protocol')}, want 1")
        need(rep.get("connection_lost") is None and rep.get("goaway") is None,
             f"the HTTP/2 connection ended early: {rep.get('connection_lost')} {rep.get('goaway')}")
    else:
        need(rep.get("h2_warning") is True, "undici did not warn 'WebSocket over HTTP2 is experimental': not HTTP/2?")
        statuses = rep.get("statuses") or []
        need(len(statuses) == len(PATHS) and all(s == 200 for s in statuses),
             f"undici's handshake statuses {statuses}, want {len(PATHS)} times 200 (101 would be HTTP/1.1)")
    opens = serve_opens(log_path)
    opened = sorted(p for p, _, _ in opens)
    need(opened == sorted(PATHS), f"wsx serve opened {opened}, want {sorted(PATHS)}")
    need(all(h == "2 (CONNECT)" for _, _, h in opens),
         f"wsx serve logged HTTP versions {sorted({h for _, _, h in opens}, key=str)}, want \"2 (CONNECT)\" only")
    ws2 = metric(metrics_path, 'wsx_websockets_total{http="2"}')
    ws1 = metric(metrics_path, 'wsx_websockets_total{http="1.1"}')
    need(ws2 == len(PATHS), f'/metrics wsx_websockets_total{{http="2"}} = {ws2}, want {len(PATHS)}')
    need(ws1 in (0, None), f'/metrics wsx_websockets_total{{http="1.1"}} = {ws1}, want 0')
    num = lambda v: None if v is None else int(v)  # noqa: E731
    facts.append(f"{len(opens)} WebSockets on {tcp} TCP connection(s), HTTP/2 (metrics http=2: {num(ws2)}, "
                 f"http=1.1: {num(ws1)})")

    # ---- permessage-deflate, the suite, 16 MiB ----------------------------------------
    ext = rep.get("extensions") or ""
    need(DEFLATE in ext, f"the client did not negotiate {DEFLATE} (extensions: {ext!r})")
    need(all(DEFLATE in e for _, e, _ in opens), f"wsx serve agreed to {DEFLATE} on {sum(DEFLATE in e for _, e, _ in opens)} "
         f"of {len(opens)} WebSockets")
    n, payload = rep.get("messages"), rep.get("payload")
    need((n, payload) == (expected["suite_messages"], expected["suite_payload"]),
         f"suite: {n} messages / {payload} B echoed, want {expected['suite_messages']} / {expected['suite_payload']}")
    facts.append(f"suite {n} msgs byte-exact")
    want_big = [(b["kind"], b["bytes"], b["sha256"]) for b in expected["big"]]
    have_big = [(b.get("kind"), b.get("bytes"), b.get("sha256")) for b in rep.get("big") or []]
    need(have_big == want_big, f"16 MiB messages sent: {have_big}, want {want_big}")
    echoes = rep.get("big") or []
    need(len(echoes) == 2 and all(e.get("echo_ok") is True for e in echoes),
         f"16 MiB echoes: {[(e.get('kind'), e.get('echo_ok')) for e in echoes]}, want both intact")
    facts.append(f"16 MiB bin+text in {rep.get('big_secs')} s")

    # ---- 16 MiB + 1: 1009 with a reason naming the limit ------------------------------
    over = rep.get("oversize") or {}
    served = serve_closes(log_path)
    srv = served.get("/oversize")
    saw = (over.get("saw_code"), over.get("saw_reason"))
    need(over.get("bytes") == expected["oversize_bytes"], f"oversize: sent {over.get('bytes')} B, want {expected['oversize_bytes']}")
    need(saw[0] == 1009, f"oversize: the client saw {saw}, want 1009 from wsx serve")
    need(isinstance(saw[1], str) and str(expected["limit"]) in saw[1],
         f"oversize: wsx's reason {saw[1]!r} does not name the limit ({expected['limit']})")
    need(over.get("echoes") == 0, f"oversize: {over.get('echoes')} echoes reached the client, want none")
    need(srv is not None and srv[0] == 1009, f"oversize: wsx serve logged {srv} for /oversize, want code=1009")
    if kind == "py":
        # From the end of our send (the 16 MiB + 1 shares the connection with /big)
        # to wsx's close frame.
        secs = over.get("close_frame_secs")
        after = None if secs is None or over.get("send_secs") is None else round(secs - over["send_secs"], 3)
        need(after is not None and after <= PROMPT_SECS, f"oversize: wsx's 1009 came {after} s after our send ended, want <= {PROMPT_SECS}")
        when = f"{after} s after the send ({secs} s after its start)"
    else:
        secs = over.get("secs")
        need(isinstance(secs, (int, float)) and secs <= PROMPT_SECS + UNDICI_CLOSE_GRACE,
             f"oversize: undici's CloseEvent came {secs} s after the send, want <= {PROMPT_SECS} + {UNDICI_CLOSE_GRACE}")
        when = f"CloseEvent {secs} s after the send"
    facts.append(f'16 MiB+1 -> {saw[0]} "{saw[1]}" ({when})')

    # ---- pings --------------------------------------------------------------------------
    ping = rep.get("ping") or {}
    need(ping.get("pong") is True, f"the client's ping got no pong: {ping}")
    wping = rep.get("wsx_ping") or {}
    need(wping.get("seen") is True, f"the console's ping did not reach the client: {wping}")
    keepalive = rep.get("keepalive_pings") or 0
    need(keepalive >= 1, "no keepalive ping (--ping-interval 1) reached the client")
    pongs = metric(metrics_path, "wsx_pongs_received_total")
    need(pongs is not None and pongs >= 1 + keepalive,
         f"wsx serve counted {pongs} pongs, want >= {1 + keepalive} (the console's ping + keepalive pings the client saw)")
    facts.append(f"pings both ways, {keepalive} keepalive, wsx got {num(pongs)} pongs")

    # ---- closes -------------------------------------------------------------------------
    closes = {c.get("case"): c for c in rep.get("closes") or []}
    console = console_lines(log_path)
    for case, initiator, code, reason in CLOSE_CASES:
        c = closes.get(case)
        srv = served.get(f"/close/{case}")
        if not need(c is not None and srv is not None, f"close {case}: the client saw {c}, wsx serve logged {srv}"):
            continue
        saw = (c.get("saw_code"), c.get("saw_reason"))
        if reason is None:
            reason = c.get("reason")
            need(isinstance(reason, str) and reason.startswith("bye from "), f"close {case}: the client's reason {reason!r}")
        if initiator == "peer" and code is not None:
            need(srv == (code, reason), f"close {case}: the client closed with {code} {reason!r}, wsx serve saw {srv}")
            need(saw[0] == code, f"close {case}: wsx answered {saw}, want the code {code} echoed")
        elif initiator == "peer":
            if kind == "py":
                need(c.get("rst_stream_sent") == 8, f"close {case}: the client did not reset its stream (RST_STREAM CANCEL): {c}")
                what = "the client reset its stream (RST_STREAM CANCEL)"
            else:
                what = "undici's TCP connection was reset (undici cannot reset one stream)"
            need(srv[0] == 1006, f"close {case}: {what}, wsx serve saw {srv}, want 1006")
        elif code is not None:
            line = f'console: close {code} "{reason}" sent to 1 connection(s)'
            need(line in console, f"close {case}: no `{line}` in the serve log (console: {console})")
            need(saw == (code, reason), f"close {case}: wsx closed with {code} {reason!r}, the client saw {saw}")
            need(srv[0] == code, f"close {case}: the client answered {srv}, want the code {code} echoed")
        else:
            line = "console: drop sent to 1 connection(s)"
            need(line in console, f"close {case}: no `{line}` in the serve log (console: {console})")
            need(saw[0] == 1006, f"close {case}: wsx dropped the WebSocket, the client saw {saw}, want 1006")
            need(srv == (1006, DROPPED_BY_CONSOLE), f"close {case}: wsx serve logged {srv}")
        if kind == "py" and code is not None:
            # An orderly end: the closing handshake, then END_STREAM (RFC 8441: TCP's FIN).
            need(c.get("end_stream_from_server") is True and not c.get("missing_end_stream"),
                 f"close {case}: no END_STREAM from wsx after the closing handshake: {c}")
    facts.append("closes 1000, 4000/4001+reason, 1006 (reset/drop) both ways")
    need(rep.get("after") is True, "the HTTP/2 connection did not carry a new WebSocket after the resets and drops (/after)")
    if kind == "py":
        ends = [(s.get("path"), s.get("rst_stream_from_server")) for s in rep.get("streams") or []
                if s.get("rst_stream_from_server") not in (None, 0)]
        need(not ends, f"wsx reset streams with an error code: {ends}")

    verdict = "PASS" if not errors else "FAIL"
    print(f"{verdict}  {label:<44} {'; '.join(facts)}")
    for e in errors:
        print(f"      - {e}")
    sys.exit(0 if not errors else 1)


if __name__ == "__main__":
    main()

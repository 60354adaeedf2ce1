"""Verdict of one (peer, direction) of scripts/interop: prints one result line,
exits 0 (pass) or 1 (fail).

    judge.py peer-client  LABEL REPORT TAP SERVE_LOG METRICS EXPECTED COMPAT
                                                        peer client -> wsx serve
    judge.py wsx-client   LABEL WSX_REPORT SERVER_REPORT TAP EXPECTED COMPAT
                                                        wsx client -> peer server
    judge.py browser-up   LABEL REPORT TAP SERVE_LOG [COMPAT]   browser -> wsx serve (browser compresses)
    judge.py browser-down LABEL REPORT TAP SERVE_LOG [COMPAT]   wsx serve -> browser (wsx compresses)

REPORT files hold the JSON line a peer program printed; TAP the lines of
wiretap.py (bytes on the wire per connection); SERVE_LOG the log of `wsx serve`
(one `open ... extensions="..."` line per WebSocket). Compression on the wire
is checked by comparing the bytes of the WebSocket connections in one
direction with the payload sent that way: the suite is mostly compressible
(~350 KB, of which 32 KiB random), so more than half the payload on the wire
means that side did not compress.

The peer tests (peer-client, wsx-client) run one connection per step, told
apart by path: /suite (the suite, pings both ways), /big (16 MiB binary and
text, exactly the limit; compressible word salad, so its wire share is checked
on its own), /oversize (16 MiB + 1 byte, compressed: wsx must fail the
connection with 1009 and a reason naming the limit, deliver nothing, and the
peer must see that within PROMPT_SECS) and /close/CASE (CLOSE_CASES). EXPECTED
is what interop/messages.py printed (the limit, the suite's size, the 16 MiB
messages' SHA-256, the oversize message's length); METRICS the /metrics of
`wsx serve` at the end. Each peer test appends {peer, version, direction,
negotiated, checked, ok} to COMPAT (JSON lines; interop/compat_table.py makes
the README's table of them); when it failed, `checked` says why.
"""

import json
import re
import sys

MAX_RATIO = 0.5
DEFLATE = "permessage-deflate"


def last_json(path):
    try:
        lines = [l for l in open(path, encoding="utf-8", errors="replace") if l.startswith("{")]
    except OSError:
        return None
    return json.loads(lines[-1]) if lines else None


def json_lines(path):
    try:
        return [json.loads(l) for l in open(path) if l.startswith("{")]
    except OSError:
        return []


def wire(tap_path, path=None):
    """Bytes up, bytes down and the number of WebSocket connections (only
    those to `path` when given)."""
    ws = [c for c in json_lines(tap_path) if c["websocket"] and (path is None or c.get("path") == path)]
    return sum(c["up"] for c in ws), sum(c["down"] for c in ws), len(ws)


def frame_counts(tap_path, path, direction="down"):
    """Frame counts (wiretap.py) of the server's side of the connections to
    `path` (the client's with direction "up")."""
    out = {}
    for c in json_lines(tap_path):
        if c["websocket"] and c.get("path") == path:
            for k, v in c.get(f"frames_{direction}", {}).items():
                out[k] = out.get(k, 0) + v
    return out


# ---- the peer tests -----------------------------------------------------------------

# (case, who closes, code or None for a dropped TCP connection, reason). A
# peer's own reason is its library's ("bye from websockets", "bye from ws"):
# PEER_REASON stands for it; wsx's is fixed.
PEER_REASON = object()
WSX_REASON = "bye from wsx"
CLOSE_CASES = {
    # interop/python/peer.py, interop/node/peer.mjs (clients)
    "peer-client": [
        ("peer-1000", "peer", 1000, ""),
        ("peer-4000", "peer", 4000, PEER_REASON),
        ("peer-drop", "peer", None, ""),
        ("wsx-1000", "wsx", 1000, ""),
        ("wsx-4001", "wsx", 4001, WSX_REASON),
        ("wsx-drop", "wsx", None, ""),
    ],
    # crates/wsx-testkit/src/bin/interop_client.rs
    "wsx-client": [
        ("wsx-1000", "wsx", 1000, ""),
        ("wsx-4000", "wsx", 4000, WSX_REASON),
        ("wsx-drop", "wsx", None, ""),
        ("peer-1000", "peer", 1000, ""),
        ("peer-4001", "peer", 4001, PEER_REASON),
        ("peer-drop", "peer", None, ""),
    ],
}
CONNECTIONS = ["/suite", "/big", "/oversize"] + [f"/close/{c[0]}" for c in CLOSE_CASES["peer-client"]]
# wsx's 1009 for the 16 MiB + 1 message must reach the peer within this many
# seconds of the start of its send (which includes compressing 16 MiB).
PROMPT_SECS = 5.0
PEERS = {"websockets": "Python `websockets`", "ws": "Node `ws`"}
DROPPED_BY_CONSOLE = "dropped by the console (/drop)"


def serve_closes(log_path):
    """{path: (code, reason)} from the `close` lines of `wsx serve`."""
    out = {}
    try:
        for line in open(log_path, errors="replace"):
            m = re.search(r' close peer=\S+ path="([^"]*)" code=(\d+) reason=(.*)$', line.rstrip("\n"))
            if m:
                out[m.group(1)] = (int(m.group(2)), m.group(3))
    except OSError:
        pass
    return out


def console_lines(log_path):
    try:
        return [l.strip() for l in open(log_path, errors="replace") if l.startswith("console: ")]
    except OSError:
        return []


def metric(path, name):
    try:
        for line in open(path):
            if line.startswith(name + " "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class Verdict:
    def __init__(self):
        self.errors, self.facts, self.skipped = [], [], []

    def need(self, cond, msg):
        if not cond:
            self.errors.append(msg)
        return cond

    def skip(self, what, why):
        """A check not made because the peer said it cannot do its part
        (printed with the verdict, never silently)."""
        self.skipped.append(f"{what}: {why}")

    def ratio(self, tap_path, path, direction, payload, who):
        """The share of `payload` on the wire of `path` in `direction` ("up"
        or "down"), checked against MAX_RATIO; returns it as "NN%"."""
        up, down, n = wire(tap_path, path)
        if not self.need(n == 1, f"{path}: {n} WebSocket connections on the wire, want 1"):
            return "?"
        sent = up if direction == "up" else down
        if not self.need(payload, f"{path}: no payload"):
            return "?"
        r = sent / payload
        self.need(r <= MAX_RATIO, f"{who} did not compress on {path}: {sent} B on the wire {direction} for {payload} B of payload")
        return f"{r:.0%}"

    def oversize_wire(self, tap_path, direction, who):
        """The 16 MiB + 1 message on the wire of /oversize: compressed (an
        RSV1 frame), so that wsx's limit is met by the inflated size, not by
        a frame header; returns its size on the wire as "N.N MB"."""
        up, down, n = wire(tap_path, "/oversize")
        if not self.need(n == 1, f"/oversize: {n} WebSocket connections on the wire, want 1"):
            return "?"
        fr = frame_counts(tap_path, "/oversize", direction)
        self.need(fr.get("rsv1", 0) >= 1,
                  f"/oversize: {who} sent the 16 MiB + 1 message uncompressed (frames {direction}: {fr}), want RSV1")
        return f"{(up if direction == 'up' else down) / 1e6:.1f} MB"

    def big(self, got, expected, who):
        """The 16 MiB messages `who` reports (kind, bytes, SHA-256) against EXPECTED."""
        want = [(b["kind"], b["bytes"], b["sha256"]) for b in expected["big"]]
        have = [(b.get("kind"), b.get("bytes"), b.get("sha256")) for b in got or []]
        return self.need(have == want, f"16 MiB messages {who}: {have}, want {want}")


def big_echoes(v, rep, expected, who):
    """The 16 MiB echoes `who` reports: both intact, each exactly the limit."""
    echoes = rep.get("big") or []
    v.need(len(echoes) == 2 and all(e.get("echo_ok") is True and e.get("bytes") == expected["limit"] for e in echoes),
           f"16 MiB echoes at {who}: {echoes}, want 2 of exactly {expected['limit']} B")


def limits(v, expected):
    """The message sizes of EXPECTED against the limit: the 16 MiB messages
    exactly at it, the oversize one a byte over."""
    limit = expected.get("limit")
    v.need(limit == 16 << 20, f"messages.py: limit {limit}, want 16 MiB (the default of wsx serve and the wsx client)")
    v.need(all(b["bytes"] == limit for b in expected["big"]), f"messages.py: 16 MiB messages {expected['big']}, want {limit} B each")
    v.need(expected.get("oversize_bytes") == limit + 1, f"messages.py: oversize {expected.get('oversize_bytes')} B, want {limit} + 1")


def wsx_reason_ok(v, reason, expected, what):
    """wsx's reason for the 1009: present, and naming the limit."""
    return v.need(isinstance(reason, str) and str(expected["limit"]) in reason,
                  f"{what}: the reason {reason!r} does not name the limit ({expected['limit']} bytes)")


def prompt(v, secs, what):
    return v.need(isinstance(secs, (int, float)) and secs <= PROMPT_SECS,
                  f"{what}: the 1009 took {secs} s, want at most {PROMPT_SECS} s")


def compat(path, library, direction, negotiated, checked, ok):
    """One row of the README's table (interop/compat_table.py renders them)."""
    name, _, version = (library or "? ?").partition(" ")
    line = {"peer": PEERS.get(name, name), "version": version, "direction": direction,
            "negotiated": negotiated, "checked": checked, "ok": ok}
    with open(path, "a") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")


def checked_text(messages, pings, oversize, wire_suite, wire_big):
    """The README's "checked" column for a peer test."""
    return (f"suite {messages} msgs + 16 MiB text/binary byte-exact (exactly the limit); {oversize}; {pings}; "
            f"close 1000, 4000/4001 + reason, 1006 (TCP dropped: FIN from wsx, RST from the peer), each side initiating; "
            f"wire up/down {wire_suite[0]}/{wire_suite[1]} (16 MiB: {wire_big[0]}/{wire_big[1]})")


def judge_peer_client(v, report_path, tap_path, log_path, metrics_path, expected, compat_path):
    """A peer client (peer.py, peer.mjs) against `wsx serve --console --ping-interval 1`."""
    rep = last_json(report_path)
    if not v.need(rep is not None, f"no report from the peer (see {report_path} and its .err)"):
        rep = {}
    v.need(not rep.get("errors"), "; ".join(rep.get("errors") or [])[:600])
    v.need(rep.get("ok") is True, "the peer reported failure")
    ext = rep.get("extensions") or ""
    v.need(DEFLATE in ext, f"the peer did not negotiate {DEFLATE} (extensions: {ext!r})")
    sx = serve_extensions(log_path)
    v.need(len(sx) == len(CONNECTIONS) and all(DEFLATE in e for e in sx),
           f"wsx serve agreed to {DEFLATE} on {sum(DEFLATE in e for e in sx)} of {len(sx)} connections, want {len(CONNECTIONS)}")

    n, payload = rep.get("messages"), rep.get("payload")
    v.need((n, payload) == (expected["suite_messages"], expected["suite_payload"]),
           f"suite: the peer sent {n} messages / {payload} B, want {expected['suite_messages']} / {expected['suite_payload']}")
    v.facts.append(f"{n} messages echoed byte-exact")
    limits(v, expected)
    v.big(rep.get("big"), expected, "sent by the peer")
    big_echoes(v, rep, expected, "the peer")
    v.facts.append(f"16 MiB binary+text echoed in {rep.get('big_secs')} s")

    # 16 MiB + 1: wsx serve fails the connection with 1009 and a reason,
    # echoes nothing, and logs the close.
    over = rep.get("oversize") or {}
    served = serve_closes(log_path)
    srv = served.get("/oversize")
    saw = (over.get("saw_code"), over.get("saw_reason"))
    v.need(over.get("bytes") == expected["oversize_bytes"],
           f"oversize: the peer sent {over.get('bytes')} B, want {expected['oversize_bytes']}")
    v.need(saw[0] == 1009, f"oversize: the peer saw {saw}, want 1009 from wsx serve")
    wsx_reason_ok(v, saw[1], expected, "oversize")
    v.need(over.get("echoes") == 0, f"oversize: {over.get('echoes')} echoes reached the peer, want none")
    v.need(srv is not None and srv[0] == 1009, f"oversize: wsx serve logged {srv} for /oversize, want code=1009")
    prompt(v, over.get("secs"), "oversize")
    on_wire = v.oversize_wire(tap_path, "up", "the peer")
    v.facts.append(f'16 MiB + 1 ({on_wire} on the wire) -> {saw[0]} "{saw[1]}" at the peer in {over.get("secs")} s')
    oversize_text = f'16 MiB + 1 → 1009 "{saw[1]}" from wsx serve, no echo, seen by the peer within {PROMPT_SECS:g} s'

    # Pings: the peer's (its pong), the console's and the keepalive (the peer
    # saw them; wsx serve counted the pongs).
    ping = rep.get("ping") or {}
    v.need(ping.get("pong") is True, f"the peer's ping got no pong: {ping}")
    wping = rep.get("wsx_ping") or {}
    v.need(wping.get("seen") is True, f"the console's ping did not reach the peer: {wping}")
    keepalive = rep.get("keepalive_pings") or 0
    v.need(keepalive >= 1, "no keepalive ping reached the peer")
    pongs = metric(metrics_path, "wsx_pongs_received_total")
    v.need(pongs is not None and pongs >= 1 + keepalive,
           f"wsx serve counted {pongs} pongs, want >= {1 + keepalive} (console ping + keepalive pings the peer saw)")
    v.facts.append(f"pings both ways; {keepalive} keepalive; wsx serve got {pongs and int(pongs)} pongs")

    # Closes: what the peer saw, and the `close` line of wsx serve per path.
    closes = {c.get("case"): c for c in rep.get("closes") or []}
    console = console_lines(log_path)
    for case, initiator, code, reason in CLOSE_CASES["peer-client"]:
        c = closes.get(case)
        srv = served.get(f"/close/{case}")
        if not v.need(c is not None and srv is not None, f"close {case}: peer saw {c}, wsx serve logged {srv}"):
            continue
        saw = (c.get("saw_code"), c.get("saw_reason"))
        if reason is PEER_REASON:
            reason = c.get("reason")
            v.need(isinstance(reason, str) and reason.startswith("bye from "), f"close {case}: the peer's reason {reason!r}")
        if initiator == "peer" and code is not None:
            v.need(srv == (code, reason), f"close {case}: the peer closed with {code} {reason!r}, wsx serve saw {srv}")
            v.need(saw[0] == code, f"close {case}: wsx answered with {saw}, want the code {code} echoed")
        elif initiator == "peer":
            # A reset, reported as a vanished peer (not as an I/O error).
            v.need(srv[0] == 1006 and "without a close frame" in srv[1],
                   f"close {case}: the peer reset TCP, wsx serve saw {srv}, want 1006 (peer vanished)")
        elif code is not None:
            line = f'console: close {code} "{reason}" sent to 1 connection(s)'
            v.need(line in console, f"close {case}: no `{line}` in the serve log (console: {console})")
            v.need(saw == (code, reason), f"close {case}: wsx closed with {code} {reason!r}, the peer saw {saw}")
            v.need(srv[0] == code, f"close {case}: the peer answered {srv}, want the code {code} echoed")
        else:
            line = "console: drop sent to 1 connection(s)"
            v.need(line in console, f"close {case}: no `{line}` in the serve log (console: {console})")
            v.need(saw[0] == 1006, f"close {case}: wsx dropped TCP, the peer saw {saw}, want 1006")
            v.need(srv == (1006, DROPPED_BY_CONSOLE), f"close {case}: wsx serve logged {srv}")
    v.facts.append("closes 1000, 4000/4001+reason, 1006 both ways")

    ws_ = (v.ratio(tap_path, "/suite", "up", payload, "the peer"), v.ratio(tap_path, "/suite", "down", payload, "wsx"))
    big = sum(b["bytes"] for b in expected["big"])
    wb = (v.ratio(tap_path, "/big", "up", big, "the peer"), v.ratio(tap_path, "/big", "down", big, "wsx"))
    v.facts.append(f"wire up/down {ws_[0]}/{ws_[1]} (16 MiB: {wb[0]}/{wb[1]})")
    v.facts.append(f'"{ext}"')
    checked = checked_text(n, "ping/pong both ways, keepalive pongs counted by wsx serve", oversize_text, ws_, wb)
    compat(compat_path, rep.get("library"), "its client → `wsx serve`", ext,
           checked if not v.errors else "; ".join(v.errors)[:300], not v.errors)


def judge_wsx_client(v, wsx_path, server_path, tap_path, expected, compat_path):
    """interop_client (crates/wsx-testkit) against a peer server (peer.py, peer.mjs)."""
    rep = last_json(wsx_path)
    if not v.need(rep is not None, f"no report from interop_client (see {wsx_path} and its .err)"):
        rep = {}
    v.need(not rep.get("errors"), "; ".join(rep.get("errors") or [])[:600])
    v.need(rep.get("ok") is True, "interop_client reported failure")
    ext = rep.get("extensions") or ""
    v.need(rep.get("deflate") is not None and DEFLATE in ext, f"wsx did not negotiate {DEFLATE} (extensions: {ext!r})")
    srv = {}
    for line in json_lines(server_path):
        srv[line.get("path")] = line
    v.need(sorted(srv) == sorted(CONNECTIONS[:3] + [f"/close/{c[0]}" for c in CLOSE_CASES["wsx-client"]]),
           f"the peer server reported the connections {sorted(srv)}")
    v.need(all(DEFLATE in (s.get("extensions") or "") for s in srv.values()),
           f"the peer server did not agree to {DEFLATE} on every connection")
    library = next((s.get("library") for s in srv.values()), None)
    suite = srv.get("/suite") or {}
    big = srv.get("/big") or {}

    n, payload = rep.get("messages"), rep.get("payload")
    want = (expected["suite_messages"], expected["suite_payload"])
    v.need((n, payload) == want, f"suite: wsx sent {n} messages / {payload} B, want {want}")
    v.need((suite.get("messages"), suite.get("payload")) == want,
           f"suite: the peer server received {suite.get('messages')} messages / {suite.get('payload')} B, want {want}")
    v.facts.append(f"{n} messages echoed byte-exact")
    limits(v, expected)
    v.big(big.get("big"), expected, "received by the peer server")
    big_echoes(v, rep, expected, "wsx")
    v.facts.append(f"16 MiB binary+text echoed in {rep.get('big_secs', 0):.2f} s")

    # 16 MiB + 1 from the peer server: the wsx client fails the connection
    # with 1009 and a reason, delivers nothing; the peer sees that close.
    over = rep.get("oversize") or {}
    so = srv.get("/oversize") or {}
    sent = (over.get("sent_code"), over.get("sent_reason"))
    peer_saw = (so.get("close_code"), so.get("close_reason"))
    v.need((so.get("oversize") or {}).get("bytes") == expected["oversize_bytes"],
           f"oversize: the peer server sent {so.get('oversize')}, want {expected['oversize_bytes']} B")
    v.need(sent[0] == 1009 and over.get("code") == 1009,
           f"oversize: wsx sent {sent} and reported {over.get('code')} {over.get('reason')!r}, want 1009")
    wsx_reason_ok(v, sent[1], expected, "oversize")
    v.need(over.get("delivered") == [], f"oversize: wsx delivered messages of {over.get('delivered')} B, want none")
    v.need(peer_saw == sent, f"oversize: wsx sent {sent}, the peer server saw {peer_saw}")
    secs = (so.get("oversize") or {}).get("secs")
    prompt(v, secs, "oversize")
    wsx_secs = over.get("secs")
    wsx_secs = f"{wsx_secs:.2f}" if isinstance(wsx_secs, (int, float)) else wsx_secs
    on_wire = v.oversize_wire(tap_path, "down", "the peer server")
    v.facts.append(f'16 MiB + 1 ({on_wire} on the wire) -> {peer_saw[0]} "{peer_saw[1]}" at the peer in {secs} s (wsx: {wsx_secs} s)')
    oversize_text = (f'16 MiB + 1 → 1009 "{sent[1]}" from the wsx client, nothing delivered, '
                     f"seen by the peer within {PROMPT_SECS:g} s")

    ping = rep.get("ping") or {}
    v.need(ping.get("pong") is True, f"wsx's ping got no pong: {ping}")
    v.need(ping.get("payload") in (suite.get("pings") or []), f"the peer server did not see wsx's ping {ping.get('payload')!r}: {suite.get('pings')}")
    pp = rep.get("peer_ping") or {}
    sp = suite.get("ping") or {}
    pings_text = "ping/pong both ways"
    if sp.get("unsupported"):
        # The peer server cannot send a ping (an ASGI server): it answered
        # `cannot ping: WHY`, and the wsx client must have heard exactly that.
        v.need(pp.get("unsupported") == sp["unsupported"],
               f"the peer server cannot ping ({sp['unsupported']!r}), the wsx client reported {pp}")
        v.skip("the peer's ping at wsx, and its pong", sp["unsupported"])
        v.facts.append("wsx's ping answered (the peer's: skipped)")
        pings_text = "wsx's ping answered (the peer cannot ping)"
    else:
        v.need(pp.get("seen") is True and pp.get("confirmed") is True, f"the peer's ping at wsx: {pp}")
        v.need(sp.get("pong") is True, f"the peer server got no pong: {suite.get('ping')}")
        v.facts.append("pings both ways")

    closes = {c.get("case"): c for c in rep.get("closes") or []}
    closes_text = "closes 1000, 4000/4001+reason, 1006 both ways"
    for case, initiator, code, reason in CLOSE_CASES["wsx-client"]:
        c = closes.get(case)
        s = srv.get(f"/close/{case}")
        if not v.need(c is not None and s is not None, f"close {case}: wsx saw {c}, the peer server {s}"):
            continue
        saw = (c.get("saw_code"), c.get("saw_reason"))
        peer_saw = (s.get("close_code"), s.get("close_reason"))
        cannot = (s.get("drop") or {}).get("unsupported") if initiator == "peer" and code is None else None
        if cannot:
            # The peer server cannot drop the connection (an ASGI server): it
            # answered `cannot drop: WHY`, and wsx then closed with 1000.
            v.need(c.get("unsupported") == cannot, f"close {case}: the peer server cannot drop ({cannot!r}), wsx reported {c}")
            v.need(s.get("sent_close") is None, f"close {case}: the peer server cannot drop, yet reports sending {s.get('sent_close')}")
            v.need(saw[0] == 1000 and c.get("clean") is True and peer_saw == (1000, ""),
                   f"close {case}: after `cannot drop` wsx closes with 1000: wsx saw {saw} (clean: {c.get('clean')}), the peer {peer_saw}")
            v.skip(f"close {case} (the peer drops the connection, wsx sees 1006)", cannot)
            closes_text = "closes 1000, 4000/4001+reason both ways, 1006 (wsx drops; the peer cannot)"
            continue
        if initiator == "wsx" and code is not None:
            v.need(peer_saw == (code, reason), f"close {case}: wsx closed with {code} {reason!r}, the peer saw {peer_saw}")
            v.need(saw[0] == code and c.get("clean") is True, f"close {case}: the peer answered {saw} (clean: {c.get('clean')}), want the code {code} echoed")
        elif initiator == "wsx":
            v.need(peer_saw[0] == 1006, f"close {case}: wsx dropped TCP, the peer saw {peer_saw}, want 1006")
        elif code is not None:
            sent = s.get("sent_close")
            if reason is PEER_REASON:
                reason = sent[1] if isinstance(sent, list) else None
                v.need(isinstance(reason, str) and reason.startswith("bye from "), f"close {case}: the peer's reason {reason!r}")
            v.need(sent == [code, reason], f"close {case}: the peer server closed with {sent}, want [{code}, {reason!r}]")
            v.need(saw == (code, reason) and c.get("clean") is True, f"close {case}: the peer closed with {code} {reason!r}, wsx saw {saw} (clean: {c.get('clean')})")
            v.need(peer_saw[0] == code, f"close {case}: wsx answered {peer_saw}, want the code {code} echoed")
        else:
            v.need(s.get("sent_close") == "drop", f"close {case}: the peer server did not drop: {s.get('sent_close')}")
            v.need(saw[0] == 1006 and c.get("clean") is False, f"close {case}: the peer reset TCP, wsx saw {saw} (clean: {c.get('clean')}), want 1006")
    v.facts.append(closes_text)

    ws_ = (v.ratio(tap_path, "/suite", "up", payload, "wsx"), v.ratio(tap_path, "/suite", "down", payload, "the peer"))
    bigb = sum(b["bytes"] for b in expected["big"])
    wb = (v.ratio(tap_path, "/big", "up", bigb, "wsx"), v.ratio(tap_path, "/big", "down", bigb, "the peer"))
    v.facts.append(f"wire up/down {ws_[0]}/{ws_[1]} (16 MiB: {wb[0]}/{wb[1]})")
    v.facts.append(f'"{ext}"')
    checked = checked_text(n, pings_text, oversize_text, ws_, wb)
    compat(compat_path, library, "wsx client → its server", ext,
           checked if not v.errors else "; ".join(v.errors)[:300], not v.errors)


def serve_extensions(log_path):
    try:
        text = open(log_path, errors="replace").read()
    except OSError:
        return []
    return re.findall(r' open .*extensions="([^"]*)"', text)


def main():
    mode, label = sys.argv[1], sys.argv[2]
    errors, facts, skipped = [], [], []

    def need(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    def ratio_check(direction, sent_bytes, payload, who):
        if need(payload, "no payload reported"):
            r = sent_bytes / payload
            facts.append(f"wire {direction} {sent_bytes} B = {r:.0%} of payload")
            need(r <= MAX_RATIO, f"{who} did not compress: {sent_bytes} B on the wire {direction} for {payload} B of payload")

    if mode in ("peer-client", "wsx-client"):
        v = Verdict()
        try:
            expected = json.load(open(sys.argv[-2]))
        except (OSError, ValueError) as e:
            sys.exit(f"judge.py: EXPECTED {sys.argv[-2]}: {e}")
        if mode == "peer-client":
            judge_peer_client(v, *sys.argv[3:7], expected, sys.argv[-1])
        else:
            judge_wsx_client(v, *sys.argv[3:6], expected, sys.argv[-1])
        errors += v.errors
        facts += v.facts
        skipped = v.skipped
    elif mode in ("browser-up", "browser-down"):
        report_path, tap_path, log_path = sys.argv[3:6]
        rep = last_json(report_path)
        if need(rep is not None, f"no report from the peer (see {report_path} and its .err)"):
            ext = rep.get("extensions") or ""
            facts.append(f'peer: "{ext}"')
            need(DEFLATE in ext, f"peer did not negotiate {DEFLATE} (extensions: {ext!r})")
            need(not rep.get("errors"), "; ".join(rep.get("errors") or [])[:300])
            need(rep.get("ok") is True, "peer reported failure")
        else:
            rep = {}
        sx = serve_extensions(log_path)
        facts.append(f'wsx serve: "{"; ".join(sorted(set(sx)))}"')
        need(sx and all(DEFLATE in e for e in sx), f"wsx serve did not agree to {DEFLATE} on every connection: {sx}")
        # The browser's suite runs on /interop (its page and the 1 MiB
        # messages use other connections).
        up, down, n = wire(tap_path, "/interop" if mode.startswith("browser") else None)
        need(n >= 1, "no WebSocket connection seen on the wire")
        payload = rep.get("payload", 0)
        compat_path = sys.argv[6] if len(sys.argv) > 6 else None
        share = lambda b: f"{b / payload:.0%}" if payload else "?"  # noqa: E731
        pw = rep.get("playwright_core")
        browser = rep.get("browser") or "Chromium"
        if mode == "browser-up":
            facts.insert(0, f"{rep.get('messages', '?')} messages echoed byte-exact")
            ratio_check("up", up, payload, "the browser")
            need(rep.get("typed_echo") is True, "the message typed into the test page was not echoed")
            checked = (f"the `wsx serve` test page: its own connection, a message typed into its form echoed; "
                       f"suite {rep.get('messages', '?')} msgs echoed byte-exact (compared in the page); "
                       f"the browser compressed: wire up {share(up)}")
            direction = "browser → `wsx serve`"
        else:
            big = rep.get("largest_text_echoed", 0)
            facts.insert(0, f"{big} B JSON from wsx intact in the page")
            need(big >= 100 * 1024, f"no large text arrived intact (largest: {big} B)")
            ratio_check("down", down, payload, "wsx")
            # 1 MiB messages from wsx, fragmented, checked by SHA-256 in the page.
            sizes = [b.get("length", 0) for b in rep.get("big") or []]
            need(len(sizes) == 2 and min(sizes) >= 1 << 20, f"1 MiB echoes: {sizes}")
            fr = frame_counts(tap_path, "/fragments")
            cont = fr.get("continuation", 0)
            facts.append(f"2 x 1 MiB echoes (SHA-256 checked) in {fr.get('data', 0) + cont} frames")
            need(cont >= 16, f"wsx did not fragment the 1 MiB echoes into 64 KiB frames: frames down {fr}")
            ce = rep.get("close_event") or {}
            facts.append(f'CloseEvent {ce.get("code")} "{ce.get("reason")}"')
            need(ce.get("code") == 4001 and ce.get("reason") == "bye from the wsx console" and ce.get("wasClean"),
                 f"server-initiated close: CloseEvent {ce}")
            need(rep.get("reconnected") is True, "the test page did not reconnect and echo after the 4001 close")
            if rep.get("reconnected"):
                facts.append("page reconnected")
            checked = (f"{big} B JSON intact; 1 MiB binary + 1 MiB text echoed by wsx in "
                       f"{fr.get('data', 0) + cont} frames of at most 64 KiB (`--send-frame-size`), SHA-256 checked in the page; "
                       f"CloseEvent {ce.get('code')} \"{ce.get('reason')}\" from `wsx serve --console`; the page reconnected "
                       f"and echoed; wsx compressed: wire down {share(down)}; screenshot target/interop/browser.png")
            direction = "`wsx serve` → browser"
        if compat_path:
            name, _, version = browser.partition(" ")
            version += " (Debian bookworm" + (f"; playwright-core {pw})" if pw else ")")
            line = {"peer": name, "version": version, "direction": direction,
                    "negotiated": rep.get("extensions"), "checked": checked, "ok": not errors}
            with open(compat_path, "a") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    else:
        sys.exit(f"judge.py: unknown mode {mode}")

    print_verdict(label, errors, facts, skipped)
    sys.exit(0 if not errors else 1)


def print_verdict(label, errors, facts, skipped=()):
    """The result line, then each failed check (-) and each skipped one (~)."""
    verdict = "PASS" if not errors else "FAIL"
    print(f"{verdict}  {label:<44} {'; '.join(facts)}")
    for e in errors:
        print(f"      - {e}")
    for s in skipped:
        print(f"      ~ skipped: {s}")


if __name__ == "__main__":
    main()

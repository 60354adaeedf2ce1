"""Verdict of one (peer, direction) of scripts/interop: prints one result line,
exits 0 (pass) or 1 (fail).

    judge.py peer-client  LABEL REPORT TAP SERVE_LOG    peer client -> wsx serve
    judge.py wsx-client   LABEL WSX_REPORT SERVER_REPORT TAP   wsx client -> peer server
    judge.py browser-up   LABEL REPORT TAP SERVE_LOG    browser -> wsx serve (browser compresses)
    judge.py browser-down LABEL REPORT TAP SERVE_LOG    wsx serve -> browser (wsx compresses)

REPORT files hold the JSON line a peer program printed; TAP the lines of
wiretap.py (bytes on the wire per connection); SERVE_LOG the log of `wsx serve`
(one `open ... extensions="..."` line per WebSocket). Compression on the wire
is checked by comparing the bytes of the WebSocket connections in one
direction with the payload sent that way: the suite is mostly compressible
(~350 KB, of which 32 KiB random), so more than half the payload on the wire
means that side did not compress.
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


def frames_down(tap_path, path):
    """Frame counts (wiretap.py) of the server's side of the connections to `path`."""
    out = {}
    for c in json_lines(tap_path):
        if c["websocket"] and c.get("path") == path:
            for k, v in c.get("frames_down", {}).items():
                out[k] = out.get(k, 0) + v
    return out


def serve_extensions(log_path):
    try:
        text = open(log_path, errors="replace").read()
    except OSError:
        return []
    return re.findall(r' open .*extensions="([^"]*)"', text)


def main():
    mode, label = sys.argv[1], sys.argv[2]
    errors, facts = [], []

    def need(cond, msg):
        if not cond:
            errors.append(msg)
        return cond

    def ratio_check(direction, sent_bytes, payload, who):
        if need(payload, "no payload reported"):
            r = sent_bytes / payload
            facts.append(f"wire {direction} {sent_bytes} B = {r:.0%} of payload")
            need(r <= MAX_RATIO, f"{who} did not compress: {sent_bytes} B on the wire {direction} for {payload} B of payload")

    if mode in ("peer-client", "browser-up", "browser-down"):
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
        if mode == "peer-client":
            facts.insert(0, f"{rep.get('messages', '?')} messages echoed byte-exact")
            ratio_check("up", up, payload, "the peer")
            ratio_check("down", down, payload, "wsx")
        elif mode == "browser-up":
            facts.insert(0, f"{rep.get('messages', '?')} messages echoed byte-exact")
            ratio_check("up", up, payload, "the browser")
            need(rep.get("typed_echo") is True, "the message typed into the test page was not echoed")
        else:
            big = rep.get("largest_text_echoed", 0)
            facts.insert(0, f"{big} B JSON from wsx intact in the page")
            need(big >= 100 * 1024, f"no large text arrived intact (largest: {big} B)")
            ratio_check("down", down, payload, "wsx")
            # 1 MiB messages from wsx, fragmented, checked by SHA-256 in the page.
            sizes = [b.get("length", 0) for b in rep.get("big") or []]
            need(len(sizes) == 2 and min(sizes) >= 1 << 20, f"1 MiB echoes: {sizes}")
            fr = frames_down(tap_path, "/fragments")
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
    elif mode == "wsx-client":
        wsx_path, server_path, tap_path = sys.argv[3:6]
        rep = last_json(wsx_path)
        srv = last_json(server_path)
        if need(rep is not None, f"no report from interop_client (see {wsx_path} and its .err)"):
            facts.append(f'wsx: "{rep.get("extensions")}"')
            need(rep.get("deflate") is not None, f"wsx did not negotiate {DEFLATE} (extensions: {rep.get('extensions')!r})")
            need(not rep.get("errors"), "; ".join(rep.get("errors") or [])[:300])
            need(rep.get("ok") is True, "interop_client reported failure")
            facts.insert(0, f"{rep.get('messages')} messages echoed byte-exact")
        else:
            rep = {}
        if need(srv is not None, f"no report from the peer server (see {server_path})"):
            facts.append(f'peer server: "{srv.get("extensions")}"')
            need(DEFLATE in (srv.get("extensions") or ""), f"peer server did not agree to {DEFLATE}")
            need(srv.get("messages") == rep.get("messages") and srv.get("payload") == rep.get("payload"),
                 f"peer server received {srv.get('messages')} messages / {srv.get('payload')} B, wsx sent {rep.get('messages')} / {rep.get('payload')} B")
        up, down, n = wire(tap_path)
        need(n >= 1, "no WebSocket connection seen on the wire")
        ratio_check("up", up, rep.get("payload", 0), "wsx")
        ratio_check("down", down, rep.get("payload", 0), "the peer")
    else:
        sys.exit(f"judge.py: unknown mode {mode}")

    verdict = "PASS" if not errors else "FAIL"
    print(f"{verdict}  {label:<44} {'; '.join(facts)}")
    for e in errors:
        print(f"      - {e}")
    sys.exit(0 if not errors else 1)


if __name__ == "__main__":
    main()

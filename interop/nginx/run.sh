#!/usr/bin/env bash
# wsx behind nginx (the Debian package) as a reverse proxy, loopback only.
#
#   usage: interop/nginx/run.sh WSX_BIN OUT_DIR
#
# Our own nginx runs in the foreground (config, pid, logs and temp paths all in
# OUT_DIR) on free 127.0.0.1 ports, in front of `wsx serve` upstreams, with
# four server blocks:
#   good          proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;
#                 proxy_set_header Connection "upgrade"; proxy_read_timeout 5s;
#                 -> wsx serve --ping-interval 2
#   good-noping   the same -> wsx serve --ping-interval 0 (the keepalive control)
#   stripped      proxy_http_version 1.1; proxy_read_timeout 5s; (no Upgrade or
#                 Connection lines) -> wsx serve --ping-interval 2
#   bare          no proxy_* lines at all (nginx's defaults: HTTP/1.0 upstream)
#
# Checked:
#   1. end to end through `good`: text lines (UTF-8, empty, 64 KiB, 1 MiB) and
#      binary records through `wsx connect` in pipe mode, every echo compared
#      byte for byte; permessage-deflate negotiated through nginx (`connect -v`);
#      `wsx bench` (binary 64 KiB, and JSON text with --deflate) with its checked
#      echoes.
#   2. through `stripped` and `bare`, at / and /chat: `wsx connect` and
#      `wsx probe` fail, name the cause (a reverse proxy did not forward the
#      Upgrade header) and show the three nginx lines to add, word for word;
#      `wsx serve` logs the same diagnosis. A missing or vague diagnosis fails.
#   3. keepalive: a client that sends nothing (no pings of its own) stays idle
#      12 s through `good` (proxy_read_timeout 5s) and then gets its echo,
#      because the server's pings cross the proxy; the control through
#      `good-noping` must be cut by nginx after ~5 s (1006 at the client).
#
# Installs nginx with apt-get when it is missing (log: OUT_DIR/apt.log), without
# letting the package start the system nginx. Writes OUT_DIR/nginx.json:
#   {"nginx": VERSION, "package": DEBIAN_VERSION, "tests": [{"name", "ok", "detail"}]}
# Prints `PASS nginx: ...` / `FAIL nginx: ... (reason)` per test, then
# `nginx: N passed, M failed`; exits 1 on a failed test, 2 when the setup fails.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 WSX_BIN OUT_DIR" >&2
    exit 2
fi
start=$SECONDS
say() { echo "[nginx $((SECONDS - start)) s] $*"; }

mkdir -p "$2"
out=$(cd "$2" && pwd)
results=$out/nginx.results.tsv
: >"$results"
nginx_version=
nginx_package=

# write_json [SETUP_ERROR]: OUT_DIR/nginx.json from the results so far.
write_json() {
    NGINX_VERSION=$nginx_version NGINX_PACKAGE=$nginx_package SETUP_ERROR=${1:-} \
        python3 - "$results" "$out/nginx.json" <<'EOF'
import json, os, sys
tests = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        name, ok, detail = line.rstrip("\n").split("\t", 2)
        tests.append({"name": name, "ok": ok == "1", "detail": detail})
report = {"nginx": os.environ["NGINX_VERSION"] or None,
          "package": os.environ["NGINX_PACKAGE"] or None, "tests": tests}
if os.environ["SETUP_ERROR"]:
    report["setup_error"] = os.environ["SETUP_ERROR"]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
    f.write("\n")
EOF
}

die() {
    echo "nginx: setup failed: $*" >&2
    write_json "$*" || true
    echo "nginx: 0 passed, 1 failed"
    exit 2
}

[[ -x $1 ]] || die "WSX_BIN $1 is not an executable"
wsx=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
command -v python3 >/dev/null || die "python3 is needed (free ports, JSON)"

# ---- install ----------------------------------------------------------------------

# shellcheck source=../../scripts/peers.sh
source "$(dirname "$0")/../../scripts/peers.sh"
peers_nginx "$out" || die "nginx is needed (see above)"
nginx=$peer_nginx
nginx_version=$("$nginx" -v 2>&1 | sed -n 's|.*nginx/\([^ ]*\).*|\1|p' | head -1)
[[ -n $nginx_version ]] || die "$nginx -v printed no version"
nginx_package=$(dpkg-query -W -f '${Version}' nginx 2>/dev/null || true)

# ---- processes ----------------------------------------------------------------------

pids=()
nginx_pid=
cleanup() {
    local p i
    if [[ -n $nginx_pid ]]; then
        # Fast shutdown; the workers are the master's children.
        local workers
        workers=$(pgrep -P "$nginx_pid" 2>/dev/null || true)
        kill -TERM "$nginx_pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            sleep 0.1
        done
        for p in $nginx_pid $workers; do kill -KILL "$p" 2>/dev/null || true; done
        wait "$nginx_pid" 2>/dev/null || true
    fi
    # The idle clients are pipelines in subshells: end their processes too.
    for p in "${pids[@]}"; do kill_tree "$p"; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
# kill_tree PID: SIGTERM to PID and, children first, everything under it.
kill_tree() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null || true); do kill_tree "$c"; done
    kill "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_ports N: N distinct free loopback ports (all bound at once, then released).
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# wait_port PORT PID: until something accepts TCP connections on PORT (10 s
# at most), as long as process PID (which should listen there) lives.
wait_port() {
    local deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) && kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
}

read -r up_ka up_noping p_good p_noping p_stripped p_bare <<<"$(free_ports 6)"

# start_serve NAME PORT ARGS...: `wsx serve` upstream, log in OUT_DIR/NAME.serve.log.
start_serve() {
    local name=$1 port=$2
    shift 2
    "$wsx" serve --listen "127.0.0.1:$port" "$@" >"$out/$name.serve.log" 2>&1 &
    pids+=("$!")
    wait_port "$port" "$!" || die "wsx serve $* did not start (see $out/$name.serve.log)"
}
start_serve upstream "$up_ka" --ping-interval 2
start_serve upstream-noping "$up_noping" --ping-interval 0

tmp=$out/nginx-tmp
mkdir -p "$tmp"
user_line=
if [[ $(id -u) -eq 0 ]]; then
    # A root master drops its workers to `user`; nginx's default group
    # `nobody` does not exist on Debian.
    if group=$(id -gn nobody 2>/dev/null); then
        user_line="user nobody $group;"
    else
        user_line="user root;"
    fi
fi
# WebSocket proxying, as the nginx documentation gives it.
# shellcheck disable=SC2016 # $http_upgrade is nginx's, not ours
ws_lines='proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";'
cat >"$out/nginx.conf" <<EOF
# Generated by interop/nginx/run.sh.
$user_line
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx.error.log info;
events { worker_connections 256; }
http {
    access_log $out/nginx.access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;

    server {  # good
        listen 127.0.0.1:$p_good;
        location / {
            proxy_pass http://127.0.0.1:$up_ka;
            $ws_lines
            proxy_read_timeout 5s;
        }
    }
    server {  # good-noping: the same in front of a server that does not ping
        listen 127.0.0.1:$p_noping;
        location / {
            proxy_pass http://127.0.0.1:$up_noping;
            $ws_lines
            proxy_read_timeout 5s;
        }
    }
    server {  # stripped: no Upgrade and Connection lines
        listen 127.0.0.1:$p_stripped;
        location / {
            proxy_pass http://127.0.0.1:$up_ka;
            proxy_http_version 1.1;
            proxy_read_timeout 5s;
        }
    }
    server {  # bare: nginx's defaults
        listen 127.0.0.1:$p_bare;
        location / {
            proxy_pass http://127.0.0.1:$up_ka;
        }
    }
}
EOF
nginx_args=(-c "$out/nginx.conf" -p "$out/")
# -e (nginx >= 1.19.5): the error log before the config is read.
if "$nginx" -h 2>&1 | grep -q -- '-e filename'; then nginx_args+=(-e "$out/nginx.error.log"); fi
"$nginx" -t "${nginx_args[@]}" >"$out/nginx.test.log" 2>&1 || die "nginx -t rejected the config (see $out/nginx.test.log)"
"$nginx" "${nginx_args[@]}" -g 'daemon off;' >"$out/nginx.stdout.log" 2>&1 &
nginx_pid=$!
for p in $p_good $p_noping $p_stripped $p_bare; do
    wait_port "$p" "$nginx_pid" || die "nginx did not listen on 127.0.0.1:$p (see $out/nginx.error.log, $out/nginx.stdout.log)"
done
say "nginx $nginx_version${nginx_package:+ (Debian $nginx_package)} listening on $p_good (good), $p_noping (good-noping), $p_stripped (stripped), $p_bare (bare); upstreams $up_ka, $up_noping"

# ---- results ----------------------------------------------------------------------

passed=0
failed=0
# result NAME OK DETAIL
result() {
    local detail=${3//$'\t'/ }
    detail=${detail//$'\n'/ }
    printf '%s\t%s\t%s\n' "$1" "$2" "$detail" >>"$results"
    if [[ $2 == 1 ]]; then
        passed=$((passed + 1))
        echo "PASS nginx: $1: $detail"
    else
        failed=$((failed + 1))
        echo "FAIL nginx: $1 ($detail)"
    fi
}

# ---- 3. keepalive, started first: it idles while the rest runs -------------------

# idle_client NAME PORT: `wsx connect` (no --ping-interval: it sends no pings)
# that is silent for 12 s, then sends one line and ends its input. Records
# its exit code and how long it ran in NAME.rc.
idle_client() {
    local name=$1 port=$2 t0
    t0=$(date +%s.%N)
    { sleep 12; echo "after 12 s idle"; } | {
        timeout 30 "$wsx" connect --show-ping "ws://127.0.0.1:$port/idle" \
            >"$out/$name.out" 2>"$out/$name.err" && rc=0 || rc=$?
        echo "$rc $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")" >"$out/$name.rc"
    } || true
}
rm -f "$out/keepalive.rc" "$out/keepalive-control.rc"
idle_client keepalive "$p_good" &
ka_pid=$!
pids+=("$ka_pid")
idle_client keepalive-control "$p_noping" &
kc_pid=$!
pids+=("$kc_pid")

# ---- 1. end to end through the good proxy ----------------------------------------

good=ws://127.0.0.1:$p_good

python3 - "$out" <<'EOF'
import random, sys
out = sys.argv[1]
rng = random.Random(6455)
letters = "abcdefghijklmnopqrstuvwxyz0123456789 "
text = ["hello through nginx", "ünïcödé ✓ 日本語 🙂", "", "{\"json\": [1, 2, 3]}",
        "".join(rng.choice(letters) for _ in range(64 * 1024)),
        "".join(rng.choice(letters) for _ in range(1024 * 1024))]
with open(f"{out}/text.in", "w", encoding="utf-8") as f:
    f.write("".join(t + "\n" for t in text))
# Binary records: any byte but the newline that ends them (and no \r last).
binary = [bytes([1]), bytes(range(0, 10)) + bytes(range(11, 256)),
          bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(200 * 1024)) + b"!"]
with open(f"{out}/binary.in", "wb") as f:
    f.write(b"".join(r + b"\n" for r in binary))
with open(f"{out}/binary.expected", "w") as f:
    f.write("".join(r.hex() + "\n" for r in binary))
EOF

rc=0
timeout 30 "$wsx" connect -v "$good/chat" <"$out/text.in" >"$out/text.out" 2>"$out/text.err" || rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$out/text.in" "$out/text.out"; then
    result "text echo through nginx" 1 "wsx connect (pipe): $(wc -l <"$out/text.in") lines (UTF-8, empty, 64 KiB, 1 MiB), $(wc -c <"$out/text.in") bytes echoed byte for byte"
else
    result "text echo through nginx" 0 "wsx connect exit $rc, $(wc -c <"$out/text.out") of $(wc -c <"$out/text.in") bytes back, $(cmp "$out/text.in" "$out/text.out" 2>&1 | head -1); stderr: $(head -c 300 "$out/text.err")"
fi
if grep -q '^wsx: extensions: permessage-deflate' "$out/text.err"; then
    result "permessage-deflate through nginx" 1 "$(grep '^wsx: compression:' "$out/text.err" | head -1 | sed 's/^wsx: //')"
else
    result "permessage-deflate through nginx" 0 "wsx connect -v did not report permessage-deflate: $(head -c 300 "$out/text.err")"
fi

rc=0
timeout 30 "$wsx" connect --binary "$good/bin" <"$out/binary.in" >"$out/binary.out" 2>"$out/binary.err" || rc=$?
if [[ $rc -eq 0 ]] && cmp -s "$out/binary.expected" "$out/binary.out"; then
    result "binary echo through nginx" 1 "wsx connect --binary: 3 records (1 B, 255 B, 200 KiB) echoed byte for byte"
else
    result "binary echo through nginx" 0 "wsx connect --binary exit $rc, $(cmp "$out/binary.expected" "$out/binary.out" 2>&1 | head -1); stderr: $(head -c 300 "$out/binary.err")"
fi

# bench_check NAME JSON_FILE WANT_DEFLATE: errors 0, all connected, echoes counted.
bench_check() {
    python3 - "$2" "$3" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no JSON report ({e})"); sys.exit(1)
bad = []
if r.get("errors") != 0: bad.append(f"{r.get('errors')} errors ({r.get('first_error')})")
if r.get("connected") != r.get("connections"): bad.append(f"{r.get('connected')} of {r.get('connections')} connected")
if not r.get("messages"): bad.append("no echoes")
if sys.argv[2] == "1" and not (r.get("deflate") or {}).get("negotiated"): bad.append("permessage-deflate not negotiated")
what = f"{r.get('messages_total')} echoes of {r.get('size')} B {'text' if r.get('text') else 'binary'} checked, {r.get('connections')} connections, p50 {r.get('latency_ms', {}).get('p50', 0):.2f} ms"
if sys.argv[2] == "1":
    what += f", wire ratio {r.get('wire_ratio', {}).get('sent', 0):.2f}"
print("; ".join(bad) if bad else what)
sys.exit(1 if bad else 0)
EOF
}
rc=0
timeout 30 "$wsx" bench "$good/bench" -c 4 -s 65536 --depth 4 -d 2 --warmup 0.5 --json >"$out/bench.json" 2>"$out/bench.err" || rc=$?
if detail=$(bench_check bench "$out/bench.json" 0) && [[ $rc -eq 0 ]]; then
    result "wsx bench binary through nginx" 1 "$detail"
else
    result "wsx bench binary through nginx" 0 "exit $rc: $detail $(head -c 200 "$out/bench.err")"
fi
rc=0
timeout 30 "$wsx" bench "$good/bench" -c 2 -s 16384 --payload json --deflate -d 1 --warmup 0.3 --json >"$out/bench-deflate.json" 2>"$out/bench-deflate.err" || rc=$?
if detail=$(bench_check bench-deflate "$out/bench-deflate.json" 1) && [[ $rc -eq 0 ]]; then
    result "wsx bench --deflate JSON text through nginx" 1 "$detail"
else
    result "wsx bench --deflate JSON text through nginx" 0 "exit $rc: $detail $(head -c 200 "$out/bench-deflate.err")"
fi

# ---- 2. the proxy that does not forward Upgrade --------------------------------------

# What wsx must say, word for word: the cause, and each line to add.
cause='a reverse proxy in between did not forward the Upgrade header'
# shellcheck disable=SC2016 # $http_upgrade is nginx's, not ours
lines=('proxy_http_version 1.1;' 'proxy_set_header Upgrade $http_upgrade;' 'proxy_set_header Connection "upgrade";')

# missing_words FILE [own-lines]: prints what FILE lacks (nothing when all is
# there). With own-lines, each nginx line must be a line of its own (indent aside).
missing_words() {
    local l miss=()
    grep -qF -- "$cause" "$1" || miss+=("the cause \"$cause\"")
    for l in "${lines[@]}"; do
        if [[ $# -ge 2 ]]; then
            sed 's/^[[:space:]]*//' "$1" | grep -qxF -- "$l" || miss+=("a line \"$l\"")
        else
            grep -qF -- "$l" "$1" || miss+=("\"$l\"")
        fi
    done
    ((${#miss[@]} == 0)) || echo "missing ${miss[*]}"
}

# stripped_case NAME PORT WHAT
stripped_case() {
    local name=$1 port=$2 what=$3 path key rc miss connect_bad=() probe_bad=()
    for path in / /chat; do
        key=$name-${path#/}
        key=${key%-}
        rc=0
        echo hi | timeout 15 "$wsx" connect "ws://127.0.0.1:$port$path" >"$out/$key.connect.out" 2>"$out/$key.connect.err" || rc=$?
        miss=$(missing_words "$out/$key.connect.err")
        if [[ $rc -eq 0 || -s $out/$key.connect.out || -n $miss ]]; then
            connect_bad+=("$path: exit $rc, $miss; stderr: $(head -c 400 "$out/$key.connect.err")")
        fi
        rc=0
        timeout 15 "$wsx" probe --timeout 5 "ws://127.0.0.1:$port$path" >"$out/$key.probe.log" 2>&1 || rc=$?
        miss=$(missing_words "$out/$key.probe.log" own-lines)
        if [[ $rc -eq 0 || -n $miss ]]; then
            probe_bad+=("$path: exit $rc, $miss; output tail: $(tail -c 400 "$out/$key.probe.log")")
        fi
    done
    if ((${#connect_bad[@]} == 0)); then
        result "$name proxy ($what): wsx connect diagnosis" 1 "/ and /chat: exit 2, $(sed -n 's/.*server answered \([0-9]* [A-Za-z ]*\) instead of .*/\1/p' "$out/$name-chat.connect.err" | head -1), names the cause and the 3 nginx lines"
    else
        result "$name proxy ($what): wsx connect diagnosis" 0 "${connect_bad[*]}"
    fi
    if ((${#probe_bad[@]} == 0)); then
        result "$name proxy ($what): wsx probe diagnosis" 1 "/ and /chat: exit 2, names the cause, the 3 nginx lines one per line"
    else
        result "$name proxy ($what): wsx probe diagnosis" 0 "${probe_bad[*]}"
    fi
}
serve_warnings_before=$(grep -c 'arrived without its Upgrade header' "$out/upstream.serve.log" || true)
stripped_case stripped "$p_stripped" "proxy_http_version 1.1, no Upgrade/Connection lines"
stripped_case bare "$p_bare" "no proxy_* lines, HTTP/1.0 upstream"
# 2 proxies x 2 paths x (connect + probe)
serve_warnings=$(($(grep -c 'arrived without its Upgrade header' "$out/upstream.serve.log" || true) - serve_warnings_before))
if ((serve_warnings == 8)); then
    result "wsx serve diagnosis of the stripped handshakes" 1 "8 of 8 logged: $(grep -m1 -o 'a WebSocket handshake arrived without.*' "$out/upstream.serve.log")"
else
    result "wsx serve diagnosis of the stripped handshakes" 0 "$serve_warnings of 8 stripped handshakes logged as such in upstream.serve.log"
fi

# ---- 3. keepalive results --------------------------------------------------------------

wait "$ka_pid" "$kc_pid" 2>/dev/null || true
read -r ka_rc ka_secs <"$out/keepalive.rc" 2>/dev/null || { ka_rc=none; ka_secs='?'; }
read -r kc_rc kc_secs <"$out/keepalive-control.rc" 2>/dev/null || { kc_rc=none; kc_secs='?'; }
ka_pings=$(grep -c '^< ping' "$out/keepalive.err" || true)
ka_pongs=$(grep -c '^< pong' "$out/keepalive.err" || true)
if [[ $ka_rc == 0 && $(cat "$out/keepalive.out") == "after 12 s idle" ]] && ((ka_pings >= 4 && ka_pongs == 0)); then
    result "idle 12 s through proxy_read_timeout 5s (wsx serve --ping-interval 2)" 1 "echo received after 12 s idle, connection closed normally in ${ka_secs} s; the client sent no pings of its own (no --ping-interval), it answered $ka_pings server pings"
else
    result "idle 12 s through proxy_read_timeout 5s (wsx serve --ping-interval 2)" 0 "exit $ka_rc after ${ka_secs} s, stdout \"$(head -c 100 "$out/keepalive.out")\", $ka_pings server pings seen, $ka_pongs pongs to client pings; stderr: $(grep -v '^< p[io]ng' "$out/keepalive.err" | head -c 300)"
fi
kc_pings=$(grep -c '^< ping' "$out/keepalive-control.err" || true)
nginx_timeout=$(grep -c 'timed out.*upgraded connection' "$out/nginx.error.log" || true)
if [[ $kc_rc == 2 && ! -s $out/keepalive-control.out ]] && ((kc_pings == 0 && nginx_timeout >= 1)) \
    && python3 -c 'import sys; sys.exit(not 4.0 <= float(sys.argv[1]) <= 9.0)' "$kc_secs" 2>/dev/null; then
    result "control: idle without server pings is cut by proxy_read_timeout 5s" 1 "cut after ${kc_secs} s (nginx: upstream timed out while proxying upgraded connection), wsx connect exit 2: $(grep -v '^< p[io]ng' "$out/keepalive-control.err" | head -1 | head -c 200)"
else
    result "control: idle without server pings is cut by proxy_read_timeout 5s" 0 "exit $kc_rc after ${kc_secs} s (expected 2 after 4-9 s), stdout \"$(head -c 100 "$out/keepalive-control.out")\", $kc_pings pings, $nginx_timeout nginx timeouts logged; stderr: $(head -c 300 "$out/keepalive-control.err")"
fi

write_json
say "done; logs, config and nginx.json in $out"
echo "nginx: $passed passed, $failed failed"
((failed == 0)) || exit 1

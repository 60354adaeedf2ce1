# Sourced, not run: where the Python `websockets` and Node `ws` peers live,
# and how they are installed. Used by scripts/interop and scripts/pipe-peers;
# crates/wsx-cli/tests/pipe.rs asks `peers_paths` where to find them.
#
#   peers_paths          sets peer_python (the venv's python; its venv exists
#                        once peer_python_ready=1) and peer_node_dir
#                        (interop/node; ws is installed once peer_node_ready=1)
#   peers_install LOGDIR installs what is missing (logs: LOGDIR/venv.log,
#                        LOGDIR/npm.log); on failure prints why to stderr and
#                        returns 1
#   peers_chromium LOGDIR  makes sure $CHROMIUM (default /usr/bin/chromium)
#                        runs: apt-get installs Debian's chromium when it is
#                        missing (log: LOGDIR/apt.log); exports CHROMIUM;
#                        on failure prints why to stderr and returns 1
#   peers_apt_install LOGDIR PKG  installs a Debian package (no service started)
#   peers_nginx LOGDIR   sets peer_nginx to Debian's nginx binary, installing the
#                        package with apt-get when it is missing (without
#                        letting it start the system nginx; log: LOGDIR/apt.log);
#                        on failure prints why to stderr and returns 1
#   peers_nghttpx LOGDIR exports NGHTTPX (unless already set) as the path of
#                        nghttpx (the HTTP/2 proxy that turns an HTTP/1.1
#                        Upgrade into an RFC 8441 extended CONNECT and back),
#                        installing Debian's nghttp2-proxy with apt-get when it
#                        is missing (no service started; log: LOGDIR/apt.log);
#                        on failure prints why to stderr and returns 1
#
# Versions are pinned in interop/python/requirements.txt and
# interop/node/package-lock.json. The venv is cached under
# ${XDG_CACHE_HOME:-~/.cache}/wsx-interop (WSX_INTEROP_CACHE overrides), one per
# requirements file and Python version; node_modules sits in interop/node.

peers_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

peers_paths() {
    local cache=${WSX_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsx-interop}
    local req=$peers_root/interop/python/requirements.txt
    peer_venv=$cache/python-$(cat "$req" <(python3 -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
    peer_python=$peer_venv/bin/python
    peer_node_dir=$peers_root/interop/node
    peer_lock_sum=$(sha256sum "$peer_node_dir/package-lock.json" | cut -c1-16)
    peer_python_ready=0
    [[ -f $peer_venv/.installed ]] && peer_python_ready=1
    peer_node_ready=0
    [[ $(cat "$peer_node_dir/node_modules/.wsx-lock" 2>/dev/null) == "$peer_lock_sum" ]] && peer_node_ready=1
    return 0
}

peers_install() {
    local log=$1 req=$peers_root/interop/python/requirements.txt
    mkdir -p "$log"
    peers_paths
    if ((!peer_python_ready)); then
        echo "peers: creating $peer_venv ($(tr '\n' ' ' <"$req"))"
        rm -rf "$peer_venv"
        mkdir -p "$(dirname "$peer_venv")"
        python3 -m venv "$peer_venv" >"$log/venv.log" 2>&1 \
            || { echo "peers: python3 -m venv failed (see $log/venv.log)" >&2; return 1; }
        "$peer_venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$req" >>"$log/venv.log" 2>&1 \
            || { echo "peers: pip install -r $req failed (see $log/venv.log)" >&2; return 1; }
        touch "$peer_venv/.installed"
    fi
    if ((!peer_node_ready)); then
        command -v npm >/dev/null || { echo "peers: npm is missing (apt-get install nodejs npm)" >&2; return 1; }
        echo "peers: npm ci in interop/node (ws, playwright-core)"
        local cache=${WSX_INTEROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsx-interop}
        (cd "$peer_node_dir" && npm_config_cache=$cache/npm npm ci --no-audit --no-fund --loglevel=error) >"$log/npm.log" 2>&1 \
            || { echo "peers: npm ci failed (see $log/npm.log)" >&2; return 1; }
        echo "$peer_lock_sum" >"$peer_node_dir/node_modules/.wsx-lock"
    fi
    peers_paths
}

peers_chromium() {
    local log=$1
    local chromium=${CHROMIUM:-/usr/bin/chromium}
    mkdir -p "$log"
    if [[ ! -x $chromium ]]; then
        [[ $chromium == /usr/bin/chromium ]] || { echo "peers: CHROMIUM=$chromium is not an executable" >&2; return 1; }
        local sudo=()
        if [[ $(id -u) -ne 0 ]]; then
            command -v sudo >/dev/null || { echo "peers: Chromium is missing and installing it needs root (or sudo)" >&2; return 1; }
            sudo=(sudo -n)
        fi
        echo "peers: installing Chromium (apt-get install chromium); log: $log/apt.log"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >"$log/apt.log" 2>&1 \
            || { echo "peers: apt-get update failed (see $log/apt.log)" >&2; return 1; }
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends chromium >>"$log/apt.log" 2>&1 \
            || { echo "peers: apt-get install chromium failed (see $log/apt.log)" >&2; return 1; }
        [[ -x $chromium ]] || { echo "peers: apt-get installed chromium but $chromium is missing" >&2; return 1; }
    fi
    export CHROMIUM=$chromium
}

peers_find_nginx() { command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }

peers_nginx() {
    local log=$1
    peer_nginx=$(peers_find_nginx)
    [[ -n $peer_nginx ]] && return 0
    # bookworm: `nginx` is the server itself (nginx-light adds modules we do not use).
    local pkg=nginx
    apt-cache show nginx >/dev/null 2>&1 || pkg=nginx-light
    peers_apt_install "$log" "$pkg" || return 1
    peer_nginx=$(peers_find_nginx)
    [[ -n $peer_nginx ]] || { echo "peers: apt-get installed $pkg but there is no nginx binary" >&2; return 1; }
}

peers_find_nghttpx() { command -v nghttpx || { [[ -x /usr/sbin/nghttpx ]] && echo /usr/sbin/nghttpx; } || true; }

peers_nghttpx() {
    local log=$1
    if [[ -n ${NGHTTPX:-} ]]; then
        [[ -x $NGHTTPX ]] || { echo "peers: NGHTTPX=$NGHTTPX is not an executable" >&2; return 1; }
    else
        NGHTTPX=$(peers_find_nghttpx)
    fi
    if [[ -z $NGHTTPX ]]; then
        # bookworm: nghttp2-proxy 1.52 (pulls libev4 and libc-ares2); its
        # postinst would start the system nghttpx, which peers_apt_install stops.
        peers_apt_install "$log" nghttp2-proxy || return 1
        NGHTTPX=$(peers_find_nghttpx)
        [[ -n $NGHTTPX ]] || { echo "peers: apt-get installed nghttp2-proxy but there is no nghttpx binary" >&2; return 1; }
    fi
    "$NGHTTPX" --version >/dev/null 2>&1 \
        || { echo "peers: $NGHTTPX does not run: $("$NGHTTPX" --version 2>&1 | head -n 3)" >&2; return 1; }
    export NGHTTPX
}

# peers_apt_install LOGDIR PKG: apt-get installs Debian's PKG (as root, or
# with sudo -n), without letting its postinst start a system service
# (policy-rc.d answering 101 stops invoke-rc.d and deb-systemd-invoke while
# it runs); log: LOGDIR/apt.log. On failure prints why and returns 1.
peers_apt_install() {
    local log=$1 pkg=$2
    mkdir -p "$log"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "peers: $pkg is missing and installing it needs root (or sudo)" >&2; return 1; }
        sudo=(sudo -n)
    fi
    local policy_rc=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy_rc=/usr/sbin/policy-rc.d
        if ! printf '#!/bin/sh\n# temporary, from wsx scripts/peers.sh\nexit 101\n' | "${sudo[@]}" tee "$policy_rc" >/dev/null \
            || ! "${sudo[@]}" chmod 755 "$policy_rc"; then
            echo "peers: cannot write $policy_rc" >&2
            return 1
        fi
    fi
    echo "peers: installing $pkg (apt-get install $pkg); log: $log/apt.log"
    local ok=1
    # env, not a prefix assignment: sudo would drop DEBIAN_FRONTEND.
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >"$log/apt.log" 2>&1; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$pkg" >>"$log/apt.log" 2>&1 \
            || { echo "peers: apt-get install $pkg failed (see $log/apt.log)" >&2; ok=0; }
    else
        echo "peers: apt-get update failed (see $log/apt.log)" >&2
        ok=0
    fi
    [[ -n $policy_rc ]] && { "${sudo[@]}" rm -f "$policy_rc" || true; }
    ((ok))
}

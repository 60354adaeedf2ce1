# Sourced, not run: a private redis-server for tests and benchmarks (issue 17).
#
#   redis_install [LOGDIR]   makes sure redis-server and redis-cli are on PATH:
#                            apt-get installs Debian's redis-server (which
#                            brings redis-tools) when redis-server is missing,
#                            without letting it start the system redis on 6379
#                            (log: LOGDIR/apt.log, LOGDIR defaults to
#                            target/redis); on failure prints why to stderr
#                            and returns 1
#   redis_start PORT DIR     starts redis-server on 127.0.0.1:PORT with no
#                            persistence (--save '' --appendonly no) and
#                            --dir DIR; its pid goes to DIR/redis.pid, its log
#                            to DIR/redis.log; waits at most 10 s (REDIS_WAIT
#                            overrides) for `redis-cli -p PORT ping` to answer
#                            PONG; on failure prints why to stderr (with the
#                            log's tail), stops what it started, returns 1
#   redis_stop DIR           kills the server whose pid is in DIR/redis.pid,
#                            waits for it to exit (SIGKILL after 10 s), removes
#                            the pid file; nothing to stop is not an error
#
# Extra redis-server options can be passed after DIR to redis_start, e.g.
#   redis_start 6391 "$dir" --appendonly yes --appendfsync always
# (later options win over the defaults above).

redis_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

redis_install() {
    local log=${1:-$redis_root/target/redis}
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        return 0
    fi
    # shellcheck source=scripts/peers.sh
    source "$redis_root/scripts/peers.sh"
    peers_apt_install "$log" redis-server || return 1
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        echo "redis: apt-get installed redis-server but redis-server or redis-cli is not on PATH" >&2
        return 1
    fi
}

redis_start() {
    (($# >= 2)) || { echo "redis: usage: redis_start PORT DIR [redis-server options]" >&2; return 1; }
    local port=$1 dir=$2
    shift 2
    [[ $port =~ ^[0-9]+$ ]] || { echo "redis: port '$port' is not a number" >&2; return 1; }
    command -v redis-server >/dev/null || { echo "redis: redis-server is not on PATH (call redis_install first)" >&2; return 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/redis.pid ]] && redis_alive "$(cat "$dir/redis.pid")"; then
        echo "redis: a server from $dir is still running (pid $(cat "$dir/redis.pid")); redis_stop it first" >&2
        return 1
    fi
    rm -f "$dir/redis.pid"
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
        echo "redis: something already answers on 127.0.0.1:$port" >&2
        return 1
    fi
    # --daemonize yes: redis-server forks, writes the pid file itself and
    # returns once it is listening (or failed, with a non-zero status).
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" "$@" \
        || { echo "redis: redis-server on port $port failed to start (log: $dir/redis.log)" >&2; tail -n 5 "$dir/redis.log" >&2 2>/dev/null; return 1; }
    local wait=${REDIS_WAIT:-10} t0=$SECONDS
    until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
        if ((SECONDS - t0 >= wait)); then
            echo "redis: no PONG from 127.0.0.1:$port within ${wait} s (log: $dir/redis.log)" >&2
            tail -n 5 "$dir/redis.log" >&2 2>/dev/null
            redis_stop "$dir"
            return 1
        fi
        sleep 0.05
    done
    [[ -s $dir/redis.pid ]] || { echo "redis: server answers on port $port but wrote no $dir/redis.pid" >&2; return 1; }
}

redis_stop() {
    (($# >= 1)) || { echo "redis: usage: redis_stop DIR" >&2; return 1; }
    local dir=$1 pid i
    [[ -f $dir/redis.pid ]] || return 0
    pid=$(cat "$dir/redis.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && redis_alive "$pid"; then
        kill "$pid" 2>/dev/null
        for ((i = 0; i < 200; i++)); do
            redis_alive "$pid" || break
            sleep 0.05
        done
        if redis_alive "$pid"; then
            echo "redis: pid $pid did not exit on SIGTERM within 10 s; sending SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null
            for ((i = 0; i < 100; i++)); do
                redis_alive "$pid" || break
                sleep 0.05
            done
            redis_alive "$pid" && { echo "redis: pid $pid survived SIGKILL" >&2; return 1; }
        fi
    fi
    rm -f "$dir/redis.pid"
}

# True while PID runs and is not a zombie: a daemonized server is re-parented,
# and a container's pid 1 may never reap it, so kill -0 alone would wait forever.
redis_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    state=${state##*) }
    [[ ${state%% *} != Z ]]
}

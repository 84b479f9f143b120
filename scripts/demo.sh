#!/usr/bin/env bash
# The membership demo: a 3-node cluster of real cmand processes on this machine, a crash,
# the survivors' new view, and the node's return. Everything runs under a temporary lab
# directory and is stopped at the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --workspace
bin=target/release
lab=$(mktemp -d /tmp/clusterlab-demo.XXXXXX)
trap '"$bin/clusterlab" down --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$lab"' EXIT
run() { echo "\$ $*"; "$@"; echo; }
as() { local node=$1; shift; echo "[$node]\$ $*"; "$bin/clusterlab" exec --dir "$lab" "$node" -- "$@"; echo; }

run "$bin/clusterlab" up --config docs/examples/three.conf --dir "$lab"
as n1 cman_tool status
as n1 cman_tool nodes
echo "--- SIGKILL n3 (a crash) ---"
start=$(date +%s%N)
"$bin/clusterlab" kill --dir "$lab" n3
until "$bin/clusterlab" exec --dir "$lab" n1 -- cman_tool nodes | grep -qE '^ +3 +X'; do sleep 0.02; done
echo "n1 saw n3 leave after $(( ($(date +%s%N) - start) / 1000000 )) ms"; echo
as n1 cman_tool nodes
echo "--- restart n3 (a fresh boot, new incarnation) ---"
"$bin/clusterlab" start --dir "$lab" n3
until "$bin/clusterlab" exec --dir "$lab" n3 -- cman_tool status | grep -q '^Nodes: 3'; do sleep 0.05; done
as n3 cman_tool status

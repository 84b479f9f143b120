#!/usr/bin/env bash
# The demo: a 3-node cluster of real cmand and fenced processes on this machine, a power cut
# through the lab's APC switch, the survivors' new view, the victim fenced by the lowest
# survivor (fence_apc: off, then on again), and the node's return. Everything runs under a
# temporary lab directory and is stopped at the end, also on failure or Ctrl-C.
# DEMO_PROFILE=debug uses a debug build (faster to build, same behaviour).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${DEMO_PROFILE:-release}
if [ "$profile" = release ]; then cargo build -q --release --workspace; else cargo build -q --workspace; fi
bin=target/$profile
lab=$(mktemp -d /tmp/clusterlab-demo.XXXXXX)
trap '"$bin/clusterlab" down --dir "$lab" >/dev/null 2>&1 || true; rm -rf "$lab"' EXIT
run() { echo "\$ $*"; "$@"; echo; }
as() { local node=$1; shift; echo "[$node]\$ $*"; "$bin/clusterlab" exec --dir "$lab" "$node" -- "$@"; echo; }
ms() { echo $(( ($(date +%s%N) - start) / 1000000 )); }

run "$bin/clusterlab" up --config docs/examples/three.conf --dir "$lab"
until "$bin/clusterlab" exec --dir "$lab" n1 -- fence_tool ls 2>/dev/null | grep -q '^members       1 2 3 '; do sleep 0.1; done
as n1 cman_tool nodes
as n1 fence_tool ls
echo "--- power cut of n3 at the lab's APC switch ---"
start=$(date +%s%N)
"$bin/clusterlab" power --dir "$lab" off n3
until "$bin/clusterlab" exec --dir "$lab" n1 -- cman_tool nodes | grep -qE '^ +3 +X'; do sleep 0.02; done
echo "n1 saw n3 leave after $(ms) ms"
until "$bin/clusterlab" exec --dir "$lab" n2 -- fence_tool ls -n | grep -q '^nodeid 3 .* how agent'; do sleep 0.02; done
echo "n3 fenced (fence_apc reboot through the switch) after $(ms) ms"; echo
as n2 fence_tool ls -n
echo "--- n3 boots again (the agent's reboot turned its outlet on) and rejoins ---"
until "$bin/clusterlab" exec --dir "$lab" n3 -- cman_tool status 2>/dev/null | grep -q '^Nodes: 3'; do sleep 0.05; done
echo "n3 back in the cluster after $(ms) ms"; echo
as n3 cman_tool status

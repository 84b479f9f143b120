#!/usr/bin/env bash
# The demo: the reference deployment (two hosts, two VMs, APC + manual fencing) on this
# machine — clustat, VMs enabled, a live migration with QEMU's downtime, a power cut with
# fencing and failover — then everything is torn down (`clusterlab demo`, tests/src/demo.rs).
# DEMO_PROFILE=debug uses a debug build (faster to build, same behaviour).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${DEMO_PROFILE:-release}
if [ "$profile" = release ]; then cargo build -q --release --workspace; else cargo build -q --workspace; fi
exec "target/$profile/clusterlab" demo "$@"

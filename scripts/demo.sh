#!/usr/bin/env bash
# The main job, for now the seed flow: build examples/seed_client, start a loopback echo
# server on an ephemeral port, run the client against it and show its log.
# Dependencies must already be installed (scripts/install-deps.sh). Build tree: build-demo/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -f build-demo/meson-private/coredata.dat ]]; then
  meson setup --reconfigure build-demo --wrap-mode=nodownload -Dtests=false -Dbenchmarks=false
else
  meson setup build-demo --wrap-mode=nodownload -Dtests=false -Dbenchmarks=false
fi
meson compile -C build-demo seed_client
python3 tests/run_seed_example.py --demo build-demo/examples/seed_client

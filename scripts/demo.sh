#!/usr/bin/env bash
# The main job: build the uringcat tool and the seed example, then run the seed's flow both
# ways against a loopback echo server on an ephemeral port: the example program (its log),
# and the one-line `uringcat` equivalent (connect within 3.5 s, send "data\n", wait up to
# 5.5 s for the reply), followed by what a refused connection looks like.
# Dependencies must already be installed (scripts/install-deps.sh). Build tree: build-demo/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -f build-demo/meson-private/coredata.dat ]]; then
  meson setup --reconfigure build-demo --wrap-mode=nodownload -Dtests=false -Dbenchmarks=false
else
  meson setup build-demo --wrap-mode=nodownload -Dtests=false -Dbenchmarks=false
fi
meson compile -C build-demo seed_client tools/uringcat:executable
python3 tests/run_seed_example.py --demo build-demo/examples/seed_client

python3 - build-demo/tools/uringcat <<'PY'
import shlex, socket, subprocess, sys, threading

uringcat = sys.argv[1]
server = socket.create_server(("127.0.0.1", 0))
server.settimeout(20)
port = server.getsockname()[1]

def echo():
    conn, _ = server.accept()
    with conn:
        conn.settimeout(20)
        while data := conn.recv(65536):
            conn.sendall(data)

threading.Thread(target=echo, daemon=True).start()

def show(args, stdin):
    print(f"\n$ printf 'data\\n' | {shlex.join(['uringcat', *args])}", flush=True)
    run = subprocess.run([uringcat, *args], input=stdin, timeout=30)
    print(f"(exit status {run.returncode})", flush=True)
    return run.returncode

ok = show(["-v", "-w", "3.5", "-i", "5.5", "127.0.0.1", str(port)], b"data\n") == 0
closed = socket.socket()
closed.bind(("127.0.0.1", 0))  # bound, never listening: connects to it are refused
refused = show(["-w", "3.5", "127.0.0.1", str(closed.getsockname()[1])], b"data\n") == 4
sys.exit(0 if ok and refused else 1)
PY

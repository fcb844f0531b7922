#!/usr/bin/env python3
"""Runs examples/seed_client end to end against loopback peers this script owns.

1. The seed flow: an echo server on 127.0.0.1 with an ephemeral port (a thread of this
   process, so there is nothing to kill afterwards); seed_client must log
   `recv: b'data\\n'` and exit 0.
2. The refused path: a socket bound to 127.0.0.1 but never listening, so the kernel answers
   the SYN with a reset; seed_client must log "Connection refused" and exit 1, not crash.

Every wait is bounded. Traffic stays on 127.0.0.1.

Usage: run_seed_example.py SEED_CLIENT          both checks (the meson test)
       run_seed_example.py --demo SEED_CLIENT   the seed flow only, its log passed through
       run_seed_example.py --wrapper "valgrind --error-exitcode=9 -q" SEED_CLIENT
                                                both checks, the client run under a wrapper
"""
import argparse
import shlex
import socket
import subprocess
import sys
import threading

CLIENT_TIMEOUT_S = 30  # the client's own deadlines add up to 3.5 + 5.5 + 5.5 s
PEER_TIMEOUT_S = 10


class EchoServer:
    """Echoes every connection's bytes back until the peer closes; one connection at a time."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)  # lets serve() notice stop() promptly
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=PEER_TIMEOUT_S)
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(PEER_TIMEOUT_S)
                try:
                    while data := conn.recv(4096):
                        conn.sendall(data)
                except OSError:
                    pass  # the client's problem, reported by its exit status and log


def run_client(client, port, wrapper=()):
    try:
        proc = subprocess.run(
            [*wrapper, client, "127.0.0.1", str(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:  # run() has already killed the client
        sys.exit(f"FAIL: seed_client still running after {err.timeout} s")
    return proc.returncode, proc.stderr


def check(name, ok, rc, log):
    print(f"--- {name}: exit status {rc}\n{log}", end="" if log.endswith("\n") else "\n")
    print(f"{'ok' if ok else 'FAIL'}: {name}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="run the seed flow only")
    parser.add_argument("--wrapper", default="", help="command prefix, e.g. valgrind")
    parser.add_argument("seed_client")
    args = parser.parse_args()

    wrapper = shlex.split(args.wrapper)
    with EchoServer() as server:
        rc, log = run_client(args.seed_client, server.port, wrapper)
    if args.demo:
        sys.stderr.write(log)
        return rc
    ok = check("seed flow against an echo peer", rc == 0 and "recv: b'data\\n'" in log, rc, log)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connect() is refused
        rc, log = run_client(args.seed_client, closed.getsockname()[1], wrapper)
    ok &= check("refused port", rc == 1 and "Connection refused" in log, rc, log)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

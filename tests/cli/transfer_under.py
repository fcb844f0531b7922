#!/usr/bin/env python3
"""A uringcat transfer both ways under a wrapper (valgrind in scripts/test.sh): a listener
`uringcat -v -l 127.0.0.1 0` (it logs the port the kernel chose) and a client
`uringcat 127.0.0.1 PORT`, each run by the wrapper, exchange 1 MiB of random bytes in each
direction at once; both must exit 0 with the bytes intact, and the wrapper must report nothing
(its --error-exitcode turns a finding into a non-zero status).

Usage: transfer_under.py [--wrapper "valgrind -q --error-exitcode=9 ..."] URINGCAT
"""
import argparse
import os
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wrapper", default="")
    parser.add_argument("uringcat")
    args = parser.parse_args()
    wrapper = shlex.split(args.wrapper)
    to_server, to_client = os.urandom(1 << 20), os.urandom(1 << 20)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        path = lambda name: os.path.join(tmp, name)
        for name, data in (("to_server", to_server), ("to_client", to_client)):
            with open(path(name), "wb") as f:
                f.write(data)
        with open(path("to_client"), "rb") as sin, open(path("server_out"), "wb") as sout:
            server = subprocess.Popen(
                [*wrapper, args.uringcat, "-v", "-l", "127.0.0.1", "0"],
                stdin=sin, stdout=sout, stderr=subprocess.PIPE,
            )
        try:
            port, log = None, b""
            deadline = time.monotonic() + 60  # valgrind's start-up is slow
            while port is None and time.monotonic() < deadline and server.poll() is None:
                if select.select([server.stderr], [], [], 0.5)[0]:
                    log += os.read(server.stderr.fileno(), 4096)
                    m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log)
                    port = m and int(m.group(1))
            if port is None:
                failures.append(f"the listener never said where it listens: {log!r}")
            else:
                with open(path("to_server"), "rb") as cin, open(path("client_out"), "wb") as cout:
                    client = subprocess.run(
                        [*wrapper, args.uringcat, "-w", "30", "127.0.0.1", str(port)],
                        stdin=cin, stdout=cout, stderr=subprocess.PIPE, timeout=120,
                    )
                if client.returncode != 0:
                    failures.append(f"client exit {client.returncode}: {client.stderr!r}")
            log += server.communicate(timeout=120)[1]
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        if server.returncode != 0:
            failures.append(f"listener exit {server.returncode}: {log!r}")
        if port is not None:
            with open(path("server_out"), "rb") as f:
                if f.read() != to_server:
                    failures.append("the listener's stdout differs from what the client sent")
            with open(path("client_out"), "rb") as f:
                if f.read() != to_client:
                    failures.append("the client's stdout differs from what the listener sent")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"ok: 1 MiB each way through uringcat under {args.wrapper or 'no wrapper'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

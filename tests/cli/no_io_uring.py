#!/usr/bin/env python3
"""uringcat where io_uring is unavailable (issue 5, faults): under a seccomp filter that makes
io_uring_setup fail with ENOSYS (a kernel without io_uring), then EPERM (a container's default
profile), each mode of uringcat exits with status 6 and one line on stderr that names io_uring
and the likely reason; nothing on stdout, no crash, no hang.

Usage: no_io_uring.py WITHOUT_IO_URING_LAUNCHER URINGCAT
"""
import subprocess
import sys

EXIT_NO_IO_URING = 6


def main() -> int:
    launcher, uringcat = sys.argv[1], sys.argv[2]
    failures = []
    cases = [
        ["127.0.0.1", "9"],  # connect mode: never gets as far as a socket
        ["-l", "127.0.0.1", "0"],
        ["-z", "127.0.0.1", "1-10"],
        ["-v", "-w", "0.5", "127.0.0.1", "9"],
    ]
    for err, reason in (("ENOSYS", "kernel"), ("EPERM", "seccomp")):
        for args in cases:
            run = subprocess.run(
                [launcher, err, uringcat, *args],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
            )
            stderr = run.stderr.decode(errors="replace")
            lines = stderr.splitlines()
            what = f"{err} {' '.join(args)}"
            if run.returncode != EXIT_NO_IO_URING:
                failures.append(f"{what}: exit {run.returncode}, expected 6; stderr: {stderr!r}")
            elif run.stdout:
                failures.append(f"{what}: wrote to stdout: {run.stdout!r}")
            elif len(lines) != 1 or not lines[0].startswith("uringcat: "):
                failures.append(f"{what}: expected one 'uringcat: ' line, got {stderr!r}")
            elif "io_uring is unavailable" not in lines[0] or reason not in lines[0]:
                failures.append(f"{what}: message lacks the cause ({reason}): {lines[0]!r}")
            else:
                print(f"ok: {what}: {lines[0]}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Black-box tests of the `uringcat` command line against its manual (tools/uringcat.1).

Usage: python3 tests/cli/test_uringcat.py PATH/TO/uringcat [unittest options, e.g. -v or -k NAME]

Every test runs the binary as a user does (stdin fed, stdout and stderr read, exit status
checked) against real peers: socat, ncat, nc.openbsd (Debian packages), another uringcat, or a
socket server in this process. Only 127.0.0.1 and ::1 are used. Ports come from the kernel
(bind to port 0); a peer that needs a number (socat, a uringcat listener) gets one that was just
free, and socat is retried on another port if it loses the race. Every subprocess has a deadline
and is killed by its PID at teardown. The whole file runs in well under 60 s.

What each test proves (class.test):
 1 ConnectMode.test_round_trips_data_with_socat_echo_server_seed_flow
     `printf 'data\\n' | uringcat -w 3.5 -i 5.5 127.0.0.1 PORT` against a socat echo server prints
     `data\\n`, nothing on stderr, exit 0; 256 KiB of binary bytes (NULs included) round-trip too.
 2 ListenMode.test_nc_openbsd_client_exchanges_data_with_listener
   ListenMode.test_ncat_client_exchanges_data_with_listener
     nc.openbsd -N / ncat connect to `uringcat -l 127.0.0.1 PORT`: the client's bytes come out on
     uringcat's stdout, uringcat's stdin bytes reach the client; both exit 0.
   ListenMode.test_listen_port_given_with_p_option     the `-l -p PORT HOST` form works.
 3 ListenMode.test_uringcat_client_exchanges_data_with_uringcat_listener
     uringcat to uringcat, both directions, both exit 0.
 4 BulkTransfer.test_50_mib_each_way_with_socat_echo_server_is_byte_exact
   BulkTransfer.test_50_mib_each_way_between_two_uringcats_is_byte_exact
     50 MiB of random bytes flow both ways at once (sha256 compared): a client that does not read
     while it writes would deadlock here; with -v the byte counts logged are exact.
 5 HalfClose.test_server_sees_eof_and_its_late_reply_is_printed
   HalfClose.test_socat_reply_after_eof_is_printed
     stdin EOF half-closes: the server reads EOF, then still sends its reply, which the client
     prints before exiting 0.
   HalfClose.test_no_shutdown_keeps_write_side_open    `--no-shutdown`: the server sees no EOF.
   HalfClose.test_peer_half_close_does_not_cut_off_stdin
   HalfClose.test_listener_keeps_sending_after_client_half_close
     the peer half-closes first: uringcat (connect or listen mode) still sends all of its stdin
     (as ncat, nc.openbsd and socat do).
 6 KeepOpen.test_serves_concurrent_clients_and_closes_only_the_idle_one
     `-l -k -i 0.5`: 5 clients connected at once each send a distinct line (all on stdout while
     all 5 are still connected), a silent client connected first does not block them and is
     closed (EOF) after >= 0.5 s idle, the listener keeps running and serves a later client;
     SIGTERM stops it.
   KeepOpen.test_broadcasts_stdin_lines_to_every_client   `-lk`: a stdin line reaches every client.
   ReviewFixes.*: closed stdin/stdout act as /dev/null (the socket used to become "stdout");
     --send-only delivers all of 20 MB to an echoing peer (a reset used to drop 4 MB); -k
     half-closes clients at the end of stdin, ends when stdout is closed, and closes idle
     --send-only clients; -z finds the open port with 40 descriptors and uses -s.
   KeepOpen.test_out_of_descriptors_keeps_serving_and_accepts_when_a_client_leaves
     RLIMIT_NOFILE 12 and 8 clients: EMFILE is logged, the connected clients are served, and the
     waiting ones are accepted as others leave (issue 5: descriptor exhaustion).
 7 ZeroIO.test_lists_exactly_the_open_ports_of_a_range
   ZeroIO.test_verbose_logs_closed_ports_on_stderr
   ZeroIO.test_range_with_no_open_port_exits_1
   ZeroIO.test_verbose_logs_timed_out_port
     `-z 127.0.0.1 LO-HI`: stdout is exactly `127.0.0.1 P open` for the open ports, ascending,
     exit 0; none open: exit 1; -v logs `[uringcat (PID)] 127.0.0.1 P refused` / `timed out`.
 8 ConnectErrors.test_connect_timeout_to_black_hole_exits_3
   ConnectErrors.test_connect_timeout_quiet_and_verbose
     connect into the loopback black hole with -w 0.5: exit 3, exactly
     `uringcat: connect to 127.0.0.1:PORT timed out after 0.5 s` on stderr, stdout empty,
     0.5 s <= elapsed < 2.5 s; -q leaves stderr empty (same status); -v adds only prefixed logs.
 9 ConnectErrors.test_refused_exits_4
     a bound, non-listening port: exit 4, `uringcat: connect to 127.0.0.1:PORT: Connection refused`;
     with -q nothing on stderr, still 4.
10 IdleTimeout.test_silent_peer_triggers_idle_timeout_exit_5
   IdleTimeout.test_traffic_restarts_the_idle_timer
     -i 0.3 against a peer that never sends nor closes: exit 5, one line
     `uringcat: idle timeout...0.3 s...127.0.0.1:PORT`, 0.3 <= elapsed < 2.3 s (-q: no line);
     a peer sending every 0.15 s for 0.9 s keeps the connection alive past 0.3 s.
11 Usage.test_usage_errors_exit_2_with_one_line
   Usage.test_bad_durations_exit_2_with_one_line
   Usage.test_help_and_version
     unknown options, missing/bad ports, bad durations for -w and -i (short and long forms),
     -l with too many arguments, --send-only with --recv-only...: exit 2, exactly one stderr line
     `uringcat: ...; see 'uringcat --help'`, stdout empty (also with -q); --help/-h: usage on
     stdout, exit 0; --version: `uringcat X.Y.Z`, exit 0.
12 Options.test_valid_durations_and_option_forms_are_accepted
   Options.test_source_address_option
     -w 3.5 / 3.5s / 350ms / 250000us / 2m / ... and the attached / `=` / `--wait` / `--` forms
     connect to a live server and exit 0; -s 127.0.0.1 is used as the source address.
13 Options.test_send_only_sends_stdin_discards_received_data
   Options.test_recv_only_never_reads_stdin_and_exits_when_peer_closes
   Options.test_verbose_logs_seed_style_lines_on_stderr_only
   Options.test_very_verbose_logs_more_lines_on_stderr_only
   Options.test_listen_on_port_0_logs_chosen_port
     --send-only / --recv-only as specified; -v logs `[uringcat (PID)] connect timeout: 3.5 s
     (kernel max N s from tcp_syn_retries=R)`, `connected to ...`, byte counts, nothing extra on
     stdout; -vv logs more, all prefixed; `-v -l 127.0.0.1 0` logs the chosen port.
14 IPv6.test_connect_to_ipv6_loopback / test_listen_on_ipv6_loopback / test_refused_on_ipv6_loopback
     the same over ::1 (skipped when ::1 is unavailable).
"""
import errno
import hashlib
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/uringcat [unittest options]")
    BIN = os.path.abspath(sys.argv.pop(1))
else:  # imported (e.g. by a runner): take the binary from the environment
    BIN = os.path.abspath(os.environ.get("URINGCAT", "uringcat"))

V4 = "127.0.0.1"
V6 = "::1"
RUN_TIMEOUT = 15.0  # hard deadline for any one uringcat / peer run
SOCAT = "/usr/bin/socat"
NCAT = "/usr/bin/ncat"
NC_OPENBSD = "/usr/bin/nc.openbsd"
USAGE_LINE = re.compile(rb"^uringcat: [^\n]+; see 'uringcat --help'\n$")


# ---------------------------------------------------------------------------------------------
# helpers


def free_port(host=V4):
    """A port that was free a moment ago (bound to port 0, then closed)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening_ports():
    """Ports in LISTEN state in this network namespace (from /proc/net/tcp and tcp6)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind((V6, 0))
        return True
    except OSError:
        return False


def read_sysctl(name):
    try:
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class Result:
    def __init__(self, rc, out, err, elapsed, pid):
        self.rc, self.out, self.err, self.elapsed, self.pid = rc, out, err, elapsed, pid

    def __repr__(self):
        return (f"exit={self.rc} elapsed={self.elapsed:.3f}s stdout={self.out[:300]!r} "
                f"stderr={self.err[:600]!r}")


class Collector:
    """Reads a pipe in a thread so that a long-running process never blocks on it."""

    def __init__(self, pipe):
        self._fd = pipe.fileno()
        self._buf = bytearray()
        self._cv = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            with self._cv:
                if not chunk:
                    self.closed = True
                    self._cv.notify_all()
                    return
                self._buf += chunk
                self._cv.notify_all()

    def data(self):
        with self._cv:
            return bytes(self._buf)

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate(bytes(self._buf)):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return predicate(bytes(self._buf))
                self._cv.wait(left)
            return True


class PyServer:
    """A listener on loopback whose every connection runs `handler(conn, server)` in a thread."""

    def __init__(self, handler, host=V4, backlog=16):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.stop = threading.Event()
        self.results = []  # whatever handlers append
        self.errors = []
        self.conns = []
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._threads = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(RUN_TIMEOUT)
            with self._lock:
                self.conns.append(conn)
            t = threading.Thread(target=self._handle, args=(conn, peer), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, conn, peer):
        try:
            self.handler(conn, self, peer)
        except Exception as exc:  # reported by the test through results/errors
            with self._lock:
                self.errors.append(repr(exc))
        finally:
            conn.close()

    def add_result(self, value):
        with self._cv:
            self.results.append(value)
            self._cv.notify_all()

    def wait_results(self, n, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.results) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            return list(self.results)

    def close(self):
        self.stop.set()
        self._thread.join(5)
        self.sock.close()
        with self._lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join(5)


def echo_handler(conn, server, peer):
    while data := conn.recv(65536):
        conn.sendall(data)


def recv_all(conn):
    chunks = []
    while data := conn.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


class BlackHole:
    """A loopback port where connects hang (tests/support/loopback_black_hole.hpp in Python):
    a backlog-0 listener whose accept queue is full, so the kernel drops further SYNs."""

    def __init__(self, host=V4):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.listener = socket.socket(fam, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(2):
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, self.port))
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, "black hole filler connect")
            self.fillers.append(s)
        time.sleep(0.1)  # let the fillers' handshakes finish

    def probe_hangs(self, timeout=0.2):
        fam = self.listener.family
        with socket.socket(fam, socket.SOCK_STREAM) as p:
            p.settimeout(timeout)
            try:
                p.connect((self.host, self.port))
            except socket.timeout:
                return True
            except OSError:
                return False
            return False

    def close(self):
        for s in self.fillers:
            s.close()
        self.listener.close()


# ---------------------------------------------------------------------------------------------
# base class


class CliTest(unittest.TestCase):
    def spawn(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(argv, **kw)
        self.addCleanup(self._reap, p)
        return p

    @staticmethod
    def _reap(p):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass

    def finish(self, p, input=None, timeout=RUN_TIMEOUT, start=None, what=None):
        """communicate() with a deadline; on expiry kill the process and fail the test."""
        start = time.monotonic() if start is None else start
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            out, err = out or b"", err or b""
            self.fail(f"{what or p.args} still running after {timeout} s; "
                      f"stdout={out[:300]!r} stderr={err[:600]!r}")
        return Result(p.returncode, out or b"", err or b"", time.monotonic() - start, p.pid)

    def run_tool(self, args, input=b"", timeout=RUN_TIMEOUT, stdin=None, stdout=None):
        """Runs uringcat with `args` as a user would; returns Result (exit status, outputs,
        wall time from just before exec to exit)."""
        start = time.monotonic()
        p = self.spawn([BIN, *args],
                       stdin=stdin if stdin is not None else
                       (subprocess.PIPE if input is not None else subprocess.DEVNULL),
                       stdout=stdout if stdout is not None else subprocess.PIPE)
        return self.finish(p, input=input if stdin is None else None, timeout=timeout,
                           start=start, what=f"uringcat {' '.join(args)}")

    def server(self, handler, host=V4, backlog=16):
        s = PyServer(handler, host, backlog)
        self.addCleanup(s.close)
        return s

    def black_hole(self, host=V4):
        bh = BlackHole(host)
        self.addCleanup(bh.close)
        if not bh.probe_hangs():
            self.skipTest("the loopback black hole does not make connects hang here")
        return bh

    def wait_listening(self, port, proc, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port in listening_ports():
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def start_socat(self, listen_fmt, peer, attempts=5):
        """Starts `socat listen_fmt.format(port=P) peer` on a just-free port; returns the port."""
        for _ in range(attempts):
            port = free_port()
            p = self.spawn([SOCAT, listen_fmt.format(port=port), peer],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self.wait_listening(port, p):
                return port
            self._reap(p)
        self.fail("socat did not start listening")

    def start_listener(self, args, host=V4, port=None, lflag="-l", **kw):
        """Starts `uringcat -l ... host port` (pipes by default); returns (proc, port)."""
        for _ in range(5):
            p_num = port if port is not None else free_port(host)
            kw2 = dict(stdin=subprocess.PIPE)
            kw2.update(kw)
            p = self.spawn([BIN, lflag, *args, host, str(p_num)], **kw2)
            if self.wait_listening(p_num, p):
                return p, p_num
            if p.poll() is not None:
                err = p.stderr.read() if p.stderr else b""
                if b"in use" not in err:
                    self.fail(f"uringcat -l {' '.join(args)} {host} {p_num} exited "
                              f"{p.returncode} before listening: stderr={err!r}")
            self._reap(p)
        self.fail("uringcat -l never started listening")

    def assert_one_line(self, err, pattern=None, exact=None, result=None):
        ctx = f" ({result!r})" if result is not None else ""
        self.assertTrue(err.endswith(b"\n") and err.count(b"\n") == 1,
                        f"expected exactly one stderr line, got {err!r}{ctx}")
        if exact is not None:
            self.assertEqual(err, exact, f"stderr line{ctx}")
        if pattern is not None:
            self.assertRegex(err, pattern, f"stderr line{ctx}")

    def skip_if_sanitized(self):
        """For tests that exhaust descriptors: the sanitizers' runtime tests memory through a
        pipe it opens on the spot, and with no descriptor left UBSan reports a false "invalid
        vptr". The unsanitized builds run these tests."""
        with open(BIN, "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("a sanitized build needs free descriptors of its own")

    def bound_closed_port(self, host=V4):
        """A port bound (so nobody else takes it) but not listening: connects are refused."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, 0))
        self.addCleanup(s.close)
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# 1. connect mode against socat


class ConnectMode(CliTest):
    def test_round_trips_data_with_socat_echo_server_seed_flow(self):
        port = self.start_socat("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat")
        r = self.run_tool(["-w", "3.5", "-i", "5.5", V4, str(port)], input=b"data\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"data\n", r)
        self.assertEqual(r.err, b"", r)

        payload = bytes(range(256)) * 1024  # 256 KiB, every byte value including NUL
        r = self.run_tool(["-w", "3.5", V4, str(port)], input=payload)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(r.out == payload, f"binary round trip differs: {len(r.out)} bytes back")


# ---------------------------------------------------------------------------------------------
# 2, 3. listen mode against nc.openbsd, ncat, uringcat


class ListenMode(CliTest):
    def _exchange_with_client(self, client_argv, listener_args=(), use_p=False):
        to_client = b"from-listener\n"
        to_listener = b"from-client " + os.urandom(8).hex().encode() + b"\n"
        if use_p:
            port = free_port()
            lst = self.spawn([BIN, "-l", "-p", str(port), V4], stdin=subprocess.PIPE)
            self.assertTrue(self.wait_listening(port, lst), "uringcat -l -p did not listen")
        else:
            lst, port = self.start_listener(list(listener_args))
        # As `printf ... | uringcat -l`: stdin is written and closed before any client connects.
        lst.stdin.write(to_client)
        lst.stdin.close()
        lst.stdin = None
        start = time.monotonic()
        cli = self.spawn([*client_argv, V4, str(port)], stdin=subprocess.PIPE)
        rc_cli = self.finish(cli, input=to_listener, start=start, what=client_argv[0])
        rc_lst = self.finish(lst, what="uringcat -l")
        self.assertEqual(rc_cli.out, to_client, f"client got: {rc_cli!r}; listener: {rc_lst!r}")
        self.assertEqual(rc_cli.rc, 0, rc_cli)
        self.assertEqual(rc_lst.out, to_listener, rc_lst)
        self.assertEqual(rc_lst.rc, 0, rc_lst)
        self.assertEqual(rc_lst.err, b"", rc_lst)
        return rc_cli, rc_lst

    def test_nc_openbsd_client_exchanges_data_with_listener(self):
        self._exchange_with_client([NC_OPENBSD, "-N"])

    def test_ncat_client_exchanges_data_with_listener(self):
        self._exchange_with_client([NCAT])

    def test_uringcat_client_exchanges_data_with_uringcat_listener(self):
        cli, _ = self._exchange_with_client([BIN, "-w", "3"])
        self.assertEqual(cli.err, b"", cli)

    def test_listen_port_given_with_p_option(self):
        self._exchange_with_client([NC_OPENBSD, "-N"], use_p=True)


# ---------------------------------------------------------------------------------------------
# 4. 50 MiB each way


class BulkTransfer(CliTest):
    SIZE = 50 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="uringcat-cli-")
        cls.a_path = os.path.join(cls.tmp.name, "a.in")
        cls.b_path = os.path.join(cls.tmp.name, "b.in")
        cls.sha = {}
        for path in (cls.a_path, cls.b_path):
            data = os.urandom(cls.SIZE)
            with open(path, "wb") as f:
                f.write(data)
            cls.sha[path] = hashlib.sha256(data).hexdigest()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @staticmethod
    def sha_of(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest(), os.path.getsize(path)

    def test_50_mib_each_way_with_socat_echo_server_is_byte_exact(self):
        port = self.start_socat("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat")
        out_path = os.path.join(self.tmp.name, "socat.out")
        with open(self.a_path, "rb") as fin, open(out_path, "wb") as fout:
            r = self.run_tool(["-v", "-w", "3", V4, str(port)], stdin=fin, stdout=fout, timeout=40)
        self.assertEqual(r.rc, 0, r)
        sha, size = self.sha_of(out_path)
        self.assertEqual(size, self.SIZE, r)
        self.assertEqual(sha, self.sha[self.a_path], "echoed bytes differ")
        counts = f"[uringcat ({r.pid})] sent {self.SIZE} bytes, received {self.SIZE} bytes"
        self.assertTrue(any(l == counts or l.startswith(counts + " ")
                            for l in r.err.decode(errors="replace").splitlines()),
                        f"-v byte counts: expected {counts!r}; {r!r}")

    def test_50_mib_each_way_between_two_uringcats_is_byte_exact(self):
        l_out = os.path.join(self.tmp.name, "listener.out")
        c_out = os.path.join(self.tmp.name, "client.out")
        with open(self.b_path, "rb") as l_in, open(l_out, "wb") as l_fout:
            lst, port = self.start_listener([], stdin=l_in, stdout=l_fout)
        start = time.monotonic()
        with open(self.a_path, "rb") as c_in, open(c_out, "wb") as c_fout:
            cli = self.spawn([BIN, "-w", "3", V4, str(port)], stdin=c_in, stdout=c_fout)
        rc = self.finish(cli, timeout=40, start=start, what="uringcat client")
        rl = self.finish(lst, timeout=10 if rc.rc == 0 else 2, what="uringcat -l")
        self.assertEqual(rc.rc, 0, rc)
        self.assertEqual(rl.rc, 0, rl)
        self.assertEqual(self.sha_of(l_out), (self.sha[self.a_path], self.SIZE),
                         "client -> listener bytes differ")
        self.assertEqual(self.sha_of(c_out), (self.sha[self.b_path], self.SIZE),
                         "listener -> client bytes differ")


# ---------------------------------------------------------------------------------------------
# 5. half-close


class HalfClose(CliTest):
    def test_server_sees_eof_and_its_late_reply_is_printed(self):
        def handler(conn, server, peer):
            conn.settimeout(5)
            try:
                data = recv_all(conn)  # returns only at EOF
            except socket.timeout:
                conn.sendall(b"no eof\n")
                return
            time.sleep(0.2)  # the client must still be reading
            conn.sendall(b"got %d bytes %s\n" % (len(data), hashlib.sha256(data).hexdigest()[:16].encode()))

        srv = self.server(handler)
        payload = os.urandom(100_000)
        r = self.run_tool(["-w", "3", V4, str(srv.port)], input=payload)
        expected = b"got %d bytes %s\n" % (len(payload), hashlib.sha256(payload).hexdigest()[:16].encode())
        self.assertEqual(r.out, expected, r)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(srv.errors, [])

    def test_socat_reply_after_eof_is_printed(self):
        port = self.start_socat("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                                "SYSTEM:cat >/dev/null; sleep 0.1; echo reply")
        r = self.run_tool(["-w", "3", V4, str(port)], input=b"request\n")
        self.assertEqual(r.out, b"reply\n", r)
        self.assertEqual(r.rc, 0, r)

    def test_peer_half_close_does_not_cut_off_stdin(self):
        # The peer sends a line and half-closes at once, then reads everything: the stdin ->
        # socket direction must go on until stdin's EOF (ncat, nc.openbsd and socat all do).
        def handler(conn, server, peer):
            conn.sendall(b"hi\n")
            conn.shutdown(socket.SHUT_WR)
            data = recv_all(conn)
            server.add_result((len(data), hashlib.sha256(data).hexdigest()))

        srv = self.server(handler)
        payload = os.urandom(8 * 1024 * 1024)
        r = self.run_tool(["-w", "3", V4, str(srv.port)], input=payload)
        self.assertEqual(r.out, b"hi\n", r)
        self.assertEqual(r.rc, 0, r)
        got = srv.wait_results(1, 3)
        self.assertEqual(got, [(len(payload), hashlib.sha256(payload).hexdigest())],
                         f"the peer received (bytes, sha256) {got} of {len(payload)} bytes sent on stdin; {r!r}")

    def test_listener_keeps_sending_after_client_half_close(self):
        # Same in listen mode: the client sends a line and half-closes at once, then reads.
        payload = os.urandom(8 * 1024 * 1024)
        with tempfile.TemporaryFile() as f:  # a file: a pipe would block this test's writes
            f.write(payload)
            f.seek(0)
            lst, port = self.start_listener([], stdin=f)
        with socket.create_connection((V4, port), timeout=3) as c:
            c.sendall(b"hi\n")
            c.shutdown(socket.SHUT_WR)
            c.settimeout(5)
            got = recv_all(c)
        r = self.finish(lst, timeout=5, what="uringcat -l")
        self.assertEqual(r.out, b"hi\n", r)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(got == payload, f"the client received {len(got)} of the {len(payload)} "
                        f"bytes on the listener's stdin; {r!r}")

    def test_no_shutdown_keeps_write_side_open(self):
        def handler(conn, server, peer):
            conn.settimeout(0.6)
            got, eof = b"", False
            try:
                while True:
                    d = conn.recv(65536)
                    if not d:
                        eof = True
                        break
                    got += d
            except socket.timeout:
                pass
            conn.sendall(b"eof\n" if eof else b"no-eof\n")
            server.add_result(got)

        srv = self.server(handler)
        r = self.run_tool(["--no-shutdown", "-w", "3", V4, str(srv.port)], input=b"x\n")
        self.assertEqual(r.out, b"no-eof\n", r)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(srv.wait_results(1, 2), [b"x\n"])


# ---------------------------------------------------------------------------------------------
# 6. keep-open


class KeepOpen(CliTest):
    def test_serves_concurrent_clients_and_closes_only_the_idle_one(self):
        lst, port = self.start_listener(["-k", "-i", "0.5"])
        out = Collector(lst.stdout)
        Collector(lst.stderr)
        silent = socket.create_connection((V4, port), timeout=3)
        self.addCleanup(silent.close)
        t_silent = time.monotonic()

        token = os.urandom(4).hex()
        lines = [f"client-{i}-{token}\n".encode() for i in range(5)]
        clients = []
        for _ in lines:
            c = socket.create_connection((V4, port), timeout=3)
            self.addCleanup(c.close)
            clients.append(c)
        threads = [threading.Thread(target=c.sendall, args=(line,))
                   for c, line in zip(reversed(clients), reversed(lines))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(3)
        all_there = out.wait_for(lambda b: all(l in b for l in lines), 3)
        t_lines = time.monotonic()
        self.assertTrue(all_there, f"stdout after 3 s: {out.data()!r}")
        for c in clients:
            c.close()

        # The silent client is closed once idle for 0.5 s, not before.
        silent.settimeout(3)
        try:
            got = silent.recv(100)
        except socket.timeout:
            self.fail("silent client not closed within 3 s with -i 0.5")
        t_closed = time.monotonic()
        self.assertEqual(got, b"", "silent client should see EOF")
        self.assertGreaterEqual(t_closed - t_silent, 0.5, "idle client closed too early")
        self.assertLess(t_closed - t_silent, 0.5 + 2.5, "idle client closed too late")
        self.assertLess(t_lines, t_closed, "the silent client blocked the others")

        time.sleep(0.1)
        self.assertIsNone(lst.poll(), "listener exited after closing an idle client")
        late = f"late-{token}\n".encode()
        with socket.create_connection((V4, port), timeout=3) as c:
            c.sendall(late)
            self.assertTrue(out.wait_for(lambda b: late in b, 3), f"stdout: {out.data()!r}")

        os.kill(lst.pid, signal.SIGTERM)
        try:
            lst.wait(5)
        except subprocess.TimeoutExpired:
            self.fail("listener ignored SIGTERM for 5 s")
        data = out.data()
        for l in lines + [late]:
            self.assertEqual(data.count(l), 1, f"{l!r} in stdout {data!r}")

    def test_broadcasts_stdin_lines_to_every_client(self):
        lst, port = self.start_listener([], lflag="-lk")  # combined short options
        out = Collector(lst.stdout)
        Collector(lst.stderr)
        clients = []
        for i in range(2):
            c = socket.create_connection((V4, port), timeout=3)
            self.addCleanup(c.close)
            c.sendall(b"hello-%d\n" % i)
            clients.append(c)
        # Both clients are accepted once their hello came out on stdout.
        self.assertTrue(out.wait_for(lambda b: b"hello-0\n" in b and b"hello-1\n" in b, 3),
                        f"stdout: {out.data()!r}")
        lst.stdin.write(b"broadcast\n")
        lst.stdin.flush()
        for i, c in enumerate(clients):
            c.settimeout(3)
            got = b""
            try:
                while b"broadcast\n" not in got:
                    d = c.recv(100)
                    if not d:
                        break
                    got += d
            except socket.timeout:
                pass
            self.assertEqual(got, b"broadcast\n", f"client {i}")
        os.kill(lst.pid, signal.SIGTERM)
        try:
            lst.wait(5)
        except subprocess.TimeoutExpired:
            self.fail("listener ignored SIGTERM for 5 s")


    def test_out_of_descriptors_keeps_serving_and_accepts_when_a_client_leaves(self):
        # A descriptor limit of 12 leaves room for 5 clients; the 6th to 8th wait in the
        # backlog (uringcat logs EMFILE and keeps going) and are served as others leave.
        self.skip_if_sanitized()

        def limit():
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (12, 12))
        lst, port = self.start_listener(["-v", "-k", "-i", "1"], preexec_fn=limit,
                                        stdin=subprocess.DEVNULL)
        out = Collector(lst.stdout)
        err = Collector(lst.stderr)
        lines = [f"fd-client-{i}\n".encode() for i in range(8)]
        clients = []
        for line in lines:
            c = socket.create_connection((V4, port), timeout=3)
            self.addCleanup(c.close)
            c.sendall(line)
            clients.append(c)
        self.assertTrue(err.wait_for(lambda b: b"Too many open files" in b, 3),
                        f"no EMFILE logged: {err.data()!r}")
        clients[0].close()
        clients[1].close()
        # The rest leave by the idle timeout (1 s), each making room for a waiting one.
        self.assertTrue(out.wait_for(lambda b: all(l in b for l in lines), 8),
                        f"stdout: {out.data()!r}; stderr: {err.data()!r}")
        self.assertIsNone(lst.poll(), "the listener exited")


# ---------------------------------------------------------------------------------------------
# 7. zero-I/O


class ZeroIO(CliTest):
    N = 8
    OPEN = (1, 4, 6)

    def port_range(self, open_offsets):
        """Binds N consecutive ports on 127.0.0.1 (listening at open_offsets, bound but not
        listening elsewhere, so refused); returns the first port."""
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
        rng = random.Random()
        for _ in range(50):
            base = rng.randrange(10000, max(10001, lo - self.N - 1))
            socks = []
            try:
                for i in range(self.N):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind((V4, base + i))
                    if i in open_offsets:
                        s.listen(16)
            except OSError:
                for s in socks:
                    s.close()
                continue
            for s in socks:
                self.addCleanup(s.close)
            return base
        self.skipTest("found no range of free consecutive ports")

    def test_lists_exactly_the_open_ports_of_a_range(self):
        base = self.port_range(self.OPEN)
        r = self.run_tool(["-z", "-w", "2", V4, f"{base}-{base + self.N - 1}"], input=None)
        expected = b"".join(b"127.0.0.1 %d open\n" % (base + i) for i in self.OPEN)
        self.assertEqual(r.out, expected, r)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, b"", r)

    def test_verbose_logs_closed_ports_on_stderr(self):
        base = self.port_range(self.OPEN)
        r = self.run_tool(["-z", "-v", "-w", "2", V4, f"{base}-{base + self.N - 1}"], input=None)
        expected = b"".join(b"127.0.0.1 %d open\n" % (base + i) for i in self.OPEN)
        self.assertEqual(r.out, expected, r)
        self.assertEqual(r.rc, 0, r)
        err_lines = r.err.decode(errors="replace").splitlines()
        for i in range(self.N):
            line = f"[uringcat ({r.pid})] 127.0.0.1 {base + i} refused"
            if i in self.OPEN:
                self.assertNotIn(line, err_lines, r)
            else:
                self.assertIn(line, err_lines, r)

    def test_range_with_no_open_port_exits_1(self):
        base = self.port_range(())
        r = self.run_tool(["-z", "-w", "2", V4, f"{base}-{base + 3}"], input=None)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, b"", r)

    def test_verbose_logs_timed_out_port(self):
        bh = self.black_hole()
        r = self.run_tool(["-z", "-v", "-w", "0.3", V4, str(bh.port)], input=None)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.out, b"", r)
        self.assertIn(f"[uringcat ({r.pid})] 127.0.0.1 {bh.port} timed out",
                      r.err.decode(errors="replace").splitlines(), r)
        self.assertGreaterEqual(r.elapsed, 0.3, r)


# ---------------------------------------------------------------------------------------------
# 8, 9. connect errors


class ConnectErrors(CliTest):
    def test_connect_timeout_to_black_hole_exits_3(self):
        bh = self.black_hole()
        r = self.run_tool(["-w", "0.5", V4, str(bh.port)], input=None)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.out, b"", r)
        self.assert_one_line(r.err, exact=b"uringcat: connect to 127.0.0.1:%d timed out after 0.5 s\n"
                             % bh.port, result=r)
        self.assertGreaterEqual(r.elapsed, 0.5, r)
        self.assertLess(r.elapsed, 0.5 + 2.0, r)

    def test_connect_timeout_quiet_and_verbose(self):
        bh = self.black_hole()
        r = self.run_tool(["-q", "-w", "0.3", V4, str(bh.port)], input=None)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.err, b"", r)
        self.assertEqual(r.out, b"", r)
        r = self.run_tool(["-v", "-w", "300ms", V4, str(bh.port)], input=None)
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(r.out, b"", r)
        lines = r.err.decode(errors="replace").splitlines()
        self.assertEqual(lines[-1:], [f"uringcat: connect to 127.0.0.1:{bh.port} timed out after 0.3 s"], r)
        for line in lines[:-1]:
            self.assertTrue(line.startswith(f"[uringcat ({r.pid})] "), f"{line!r} in {r!r}")

    def test_refused_exits_4(self):
        port = self.bound_closed_port()
        r = self.run_tool(["-w", "3", V4, str(port)], input=None)
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(r.out, b"", r)
        self.assert_one_line(r.err, exact=b"uringcat: connect to 127.0.0.1:%d: Connection refused\n"
                             % port, result=r)
        r = self.run_tool(["-q", V4, str(port)], input=None)
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(r.err, b"", r)


# ---------------------------------------------------------------------------------------------
# 10. idle timeout


class IdleTimeout(CliTest):
    def test_silent_peer_triggers_idle_timeout_exit_5(self):
        srv = self.server(lambda conn, server, peer: server.stop.wait(RUN_TIMEOUT))
        start = time.monotonic()
        p = self.spawn([BIN, "-i", "0.3", V4, str(srv.port)], stdin=subprocess.PIPE)  # stdin held open
        r = self.finish(p, timeout=5, start=start, what="uringcat -i 0.3")
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(r.out, b"", r)
        # the manual's example: `uringcat: idle timeout: no traffic for 0.5 s on 127.0.0.1:9999`
        self.assert_one_line(r.err, pattern=rb"^uringcat: idle timeout\b.*\b0\.3 s\b.*127\.0\.0\.1:%d\n$"
                             % srv.port, result=r)
        self.assertGreaterEqual(r.elapsed, 0.3, r)
        self.assertLess(r.elapsed, 0.3 + 2.0, r)

        p = self.spawn([BIN, "-q", "-i", "0.3", V4, str(srv.port)], stdin=subprocess.PIPE)
        r = self.finish(p, timeout=5, what="uringcat -q -i 0.3")
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(r.err, b"", r)

    def test_traffic_restarts_the_idle_timer(self):
        def handler(conn, server, peer):
            for _ in range(6):
                conn.sendall(b".")
                time.sleep(0.15)
            server.stop.wait(RUN_TIMEOUT)

        srv = self.server(handler)
        start = time.monotonic()
        p = self.spawn([BIN, "-i", "0.3", V4, str(srv.port)], stdin=subprocess.PIPE)
        r = self.finish(p, timeout=6, start=start, what="uringcat -i 0.3")
        self.assertEqual(r.rc, 5, r)
        self.assertEqual(r.out, b"......", r)
        self.assertGreaterEqual(r.elapsed, 0.75 + 0.3, r)


# ---------------------------------------------------------------------------------------------
# 11. usage errors, --help, --version


class Usage(CliTest):
    BAD_DURATIONS = ["-1", "0", "nan", "inf", "", "3.5x", "1e99", "350ms5", "  ",
                     "0ms", "-0", "NaN", "-inf", "ms", "s", "0.1ns", "1000000h", "1.2.3"]

    def check_usage_error(self, args):
        r = self.run_tool(args, input=None, timeout=5)
        self.assertEqual(r.rc, 2, r)
        self.assertEqual(r.out, b"", r)
        self.assert_one_line(r.err, pattern=USAGE_LINE, result=r)

    def test_usage_errors_exit_2_with_one_line(self):
        refused = str(self.bound_closed_port())  # if an argument slips through: a fast exit 4
        lport = str(free_port())
        cases = [
            ["--bogus", V4, refused],
            ["-Y", V4, refused],
            ["--connect-timeout"],
            ["-w"],
            [],
            [V4],                                  # missing port
            ["-w", "3.5", V4],
            ["-l"],
            [V4, "0"],                             # port 0 only for -l
            [V4, "70000"],
            [V4, "65536"],
            [V4, "abc"],
            [V4, ""],
            [V4, "80abc"],
            [V4, "1.5"],
            ["-l", V4, "70000"],
            ["-l", V4, "abc"],
            ["-l", V4, lport, "extra"],            # -l with too many arguments
            ["-l", "-p", lport, V4, "extra"],
            [V4, refused, "extra"],
            ["--send-only", "--recv-only", V4, refused],
            ["--recv-only", "--send-only", V4, refused],
            ["-z", V4, "1-70000"],
            ["-q", "-w", "0", V4, refused],        # -q still prints usage errors
            ["-q", "--bogus", V4, refused],
        ]
        for args in cases:
            with self.subTest(args=args):
                self.check_usage_error(args)

    def test_bad_durations_exit_2_with_one_line(self):
        refused = str(self.bound_closed_port())
        for value in self.BAD_DURATIONS:
            for form in (["-w", value], ["-i", value], [f"--connect-timeout={value}"],
                         [f"--idle-timeout={value}"]):
                with self.subTest(args=form):
                    self.check_usage_error([*form, V4, refused])

    def test_help_and_version(self):
        for flag in ("--help", "-h"):
            with self.subTest(flag=flag):
                r = self.run_tool([flag], input=None, timeout=5)
                self.assertEqual(r.rc, 0, r)
                self.assertRegex(r.out.lower(), rb"usage", r)
                self.assertEqual(r.err, b"", r)
        r = self.run_tool(["--version"], input=None, timeout=5)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.out, rb"^uringcat \d+\.\d+\.\d+\n$", r)
        self.assertEqual(r.err, b"", r)


# ---------------------------------------------------------------------------------------------
# 12, 13. valid options, --send-only, --recv-only, -v, -q


class Options(CliTest):
    def test_valid_durations_and_option_forms_are_accepted(self):
        srv = self.server(echo_handler)
        port = str(srv.port)
        cases = [
            ["-w", "3.5"], ["-w", "3.5s"], ["-w", "350ms"], ["-w", "250000us"], ["-w", "2m"],
            ["-w", "1h"], ["-w", "500000000ns"], ["-w3.5"], ["-w350ms"],
            ["--connect-timeout=3.5"], ["--connect-timeout", "3.5"], ["--wait", "3.5"],
            ["-i", "5.5"], ["-i", "2m"], ["--idle-timeout=350ms"], ["--idle-timeout", "5"],
            ["-n", "-w", "3.5"], ["-4"], ["-w", "3.5", "--"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.run_tool([*args, V4, port], input=b"ping\n", timeout=8)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.out, b"ping\n", r)
                self.assertEqual(r.err, b"", r)

    def test_source_address_option(self):
        def handler(conn, server, peer):
            conn.sendall(f"{peer[0]}\n".encode())
            recv_all(conn)

        srv = self.server(handler)
        r = self.run_tool(["-s", V4, V4, str(srv.port)], input=b"")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"127.0.0.1\n", r)

    def test_send_only_sends_stdin_discards_received_data(self):
        # The server sends first; stdin is closed only once that data has been sent and the
        # client had time to read it. (Otherwise the client may exit with the server's data
        # unread, and its close then resets the connection and drops whatever of stdin is still
        # in its socket buffer: a race that ncat --send-only shares; see the report.)
        sent = threading.Event()

        def handler(conn, server, peer):
            conn.sendall(b"server-data\n" * 1000)
            sent.set()
            server.add_result(recv_all(conn))  # until the client's half-close

        srv = self.server(handler)
        payload = os.urandom(200_000)
        start = time.monotonic()
        p = self.spawn([BIN, "--send-only", "-w", "3", V4, str(srv.port)], stdin=subprocess.PIPE)

        def feed():
            try:
                p.stdin.write(payload)
                p.stdin.flush()
                sent.wait(5)
                time.sleep(0.2)
                p.stdin.close()
            except OSError:
                pass  # the client died; its exit status tells

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        writer.join(RUN_TIMEOUT)
        p.stdin = None
        r = self.finish(p, timeout=5, start=start, what="uringcat --send-only")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"", r)
        self.assertEqual(r.err, b"", r)
        got = srv.wait_results(1, 3)
        self.assertEqual(len(got), 1, f"server did not read to EOF: errors {srv.errors}; {r!r}")
        self.assertTrue(got[0] == payload, f"server got {len(got[0])} bytes, not the payload")

    def test_recv_only_never_reads_stdin_and_exits_when_peer_closes(self):
        def handler(conn, server, peer):
            conn.settimeout(0.5)
            try:
                d = conn.recv(100)
                seen = b"eof" if d == b"" else d
            except socket.timeout:
                seen = None  # nothing sent, no half-close: as it should be
            conn.sendall(b"hello\n")
            server.add_result(seen)

        srv = self.server(handler)
        r = self.run_tool(["--recv-only", "-w", "3", V4, str(srv.port)], input=b"must-not-be-sent\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"hello\n", r)
        self.assertEqual(srv.wait_results(1, 2), [None], "server received data or EOF")

    def test_verbose_logs_seed_style_lines_on_stderr_only(self):
        srv = self.server(echo_handler)
        r = self.run_tool(["-v", "-w", "3.5", V4, str(srv.port)], input=b"data\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"data\n", r)
        lines = r.err.decode(errors="replace").splitlines()
        prefix = f"[uringcat ({r.pid})] "
        for line in lines:
            self.assertTrue(line.startswith(prefix), f"{line!r} lacks {prefix!r}: {r!r}")
        msgs = [l[len(prefix):] for l in lines]
        retries = read_sysctl("tcp_syn_retries")
        timeout_lines = [m for m in msgs if m.startswith("connect timeout: ")]
        self.assertEqual(len(timeout_lines), 1, r)
        m = re.fullmatch(r"connect timeout: 3\.5 s \(kernel max (\d+(?:\.\d+)?) s from "
                         r"tcp_syn_retries=(\d+)\)", timeout_lines[0])
        self.assertIsNotNone(m, timeout_lines[0])
        self.assertGreater(float(m.group(1)), 1.0, timeout_lines[0])
        if retries is not None:
            self.assertEqual(int(m.group(2)), retries, timeout_lines[0])
        # The manual's examples; details may follow (`... from ADDR in 0.150 ms`, `... in 0.002 s`).
        connected = f"connected to 127.0.0.1:{srv.port}"
        self.assertTrue(any(m == connected or m.startswith(connected + " ") for m in msgs), r)
        counts = "sent 5 bytes, received 5 bytes"
        self.assertTrue(any(m == counts or m.startswith(counts + " ") for m in msgs), r)

    def test_very_verbose_logs_more_lines_on_stderr_only(self):
        srv = self.server(echo_handler)
        r1 = self.run_tool(["-v", "-w", "3.5", V4, str(srv.port)], input=b"data\n")
        r2 = self.run_tool(["-vv", "-w", "3.5", V4, str(srv.port)], input=b"data\n")
        self.assertEqual((r2.rc, r2.out), (0, b"data\n"), r2)
        lines = r2.err.decode(errors="replace").splitlines()
        for line in lines:
            self.assertTrue(line.startswith(f"[uringcat ({r2.pid})] "), f"{line!r} in {r2!r}")
        self.assertGreater(len(lines), len(r1.err.splitlines()), f"-v: {r1!r}; -vv: {r2!r}")

    def test_listen_on_port_0_logs_chosen_port(self):
        p = self.spawn([BIN, "-v", "-l", V4, "0"], stdin=subprocess.PIPE)
        err = Collector(p.stderr)
        pat = re.compile(rb"listening on 127\.0\.0\.1:(\d+)\n")
        self.assertTrue(err.wait_for(lambda b: pat.search(b) is not None, 5),
                        f"stderr: {err.data()!r}")
        port = int(pat.search(err.data()).group(1))
        self.assertNotEqual(port, 0)
        p.stdin.write(b"hi\n")
        p.stdin.close()
        p.stdin = None
        with socket.create_connection((V4, port), timeout=3) as c:
            c.sendall(b"yo\n")
            c.shutdown(socket.SHUT_WR)
            c.settimeout(3)
            self.assertEqual(recv_all(c), b"hi\n")
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            self.fail("listener did not exit after its one connection")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.read(), b"yo\n")


# ---------------------------------------------------------------------------------------------
# 14. IPv6


@unittest.skipUnless(ipv6_available(), "::1 is not available")
class ReviewFixes(CliTest):
    """Defects a review found in the tool, each with the test that would have caught it."""

    def test_closed_stdin_and_stdout_act_as_dev_null(self):
        # With fds 0 and 1 closed, the ring and the socket used to take their numbers: the
        # "stdout" was the socket, and the server got its own bytes back.
        def handler(conn, server, peer):
            conn.sendall(b"secret\n")
            conn.shutdown(socket.SHUT_WR)
            server.add_result(recv_all(conn))

        srv = self.server(handler)
        run = subprocess.run(f"exec {shlex.quote(BIN)} --recv-only {V4} {srv.port} <&- >&-",
                             shell=True, capture_output=True, timeout=RUN_TIMEOUT)
        self.assertEqual(run.returncode, 0, run)
        self.assertEqual(srv.wait_results(1, 5), [b""])

    def test_send_only_delivers_everything_to_a_peer_that_echoes(self):
        # --send-only used to close while its data was still in flight, and the echoed bytes
        # arriving at the closed socket made the kernel reset it: the server got 16 of 20 MB.
        payload = os.urandom(20 << 20)

        def handler(conn, server, peer):
            n = 0
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                n += len(data)
                try:
                    conn.sendall(data)
                except OSError:
                    break
            server.add_result(n)

        srv = self.server(handler)
        with tempfile.TemporaryFile() as f:
            f.write(payload)
            f.seek(0)
            r = self.run_tool(["--send-only", V4, str(srv.port)], stdin=f, input=None)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(srv.wait_results(1, 10), [len(payload)])

    def test_keep_open_half_closes_clients_at_the_end_of_stdin(self):
        lst, port = self.start_listener(["-k"], stdin=subprocess.DEVNULL)
        c = socket.create_connection((V4, port), timeout=3)
        self.addCleanup(c.close)
        self.assertEqual(c.recv(10), b"")  # EOF at once, as with ncat -k

    def test_keep_open_ends_when_stdout_is_closed(self):
        lst, port = self.start_listener(["-k"], stdin=subprocess.DEVNULL)
        lst.stdout.close()  # the reader of our stdout has gone (`uringcat -lk ... | head`)
        c = socket.create_connection((V4, port), timeout=3)
        c.sendall(b"x" * 100000)
        c.close()
        r = self.finish(lst, timeout=5)
        self.assertEqual(r.rc, 0, r)

    def test_keep_open_send_only_closes_idle_clients(self):
        lst, port = self.start_listener(["-k", "--send-only", "-i", "0.5"])
        c = socket.create_connection((V4, port), timeout=3)
        self.addCleanup(c.close)
        start = time.monotonic()
        self.assertEqual(c.recv(10), b"")
        self.assertGreaterEqual(time.monotonic() - start, 0.45)

    def test_scan_with_few_descriptors_still_finds_the_open_port(self):
        # Probes that found no descriptor used to be reported "failed", dropping open ports.
        srv = self.server(lambda conn, server, peer: None)
        lo = max(1, srv.port - 50)
        hi = min(65535, lo + 100)

        def limit():
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

        self.skip_if_sanitized()
        start = time.monotonic()
        p = self.spawn([BIN, "-z", "-w", "2", V4, f"{lo}-{hi}"], preexec_fn=limit)
        r = self.finish(p, start=start)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(f"{V4} {srv.port} open\n".encode(), r.out)

    def test_scan_uses_the_source_address(self):
        def handler(conn, server, peer):
            server.add_result(peer[0])

        srv = self.server(handler)
        r = self.run_tool(["-z", "-s", "127.0.0.2", V4, str(srv.port)])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(srv.wait_results(1, 5), ["127.0.0.2"])


class IPv6(CliTest):
    def test_connect_to_ipv6_loopback(self):
        srv = self.server(echo_handler, host=V6)
        r = self.run_tool(["-w", "3", V6, str(srv.port)], input=b"data6\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"data6\n", r)
        self.assertEqual(r.err, b"", r)

    def test_listen_on_ipv6_loopback(self):
        lst, port = self.start_listener([], host=V6)
        lst.stdin.write(b"to-v6-client\n")
        lst.stdin.close()
        lst.stdin = None
        with socket.create_connection((V6, port), timeout=3) as c:
            c.sendall(b"from-v6-client\n")
            c.shutdown(socket.SHUT_WR)
            c.settimeout(3)
            self.assertEqual(recv_all(c), b"to-v6-client\n")
        r = self.finish(lst, timeout=5, what="uringcat -l ::1")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"from-v6-client\n", r)

    def test_refused_on_ipv6_loopback(self):
        port = self.bound_closed_port(V6)
        r = self.run_tool(["-w", "3", V6, str(port)], input=None)
        self.assertEqual(r.rc, 4, r)
        self.assertEqual(r.out, b"", r)
        self.assert_one_line(r.err, pattern=rb"^uringcat: connect to \[?::1\]?:%d: Connection refused\n$"
                             % port, result=r)


def setUpModule():
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        raise RuntimeError(f"{BIN} is not an executable file")
    for peer in (SOCAT, NCAT, NC_OPENBSD):
        if not os.access(peer, os.X_OK):
            raise RuntimeError(f"peer {peer} is not installed")


if __name__ == "__main__":
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        sys.exit(f"FAIL: {BIN} is not an executable file")
    unittest.main(verbosity=2)

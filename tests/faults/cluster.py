"""A throwaway PostgreSQL cluster that fault-injection tests may stop, restart and kill.

The cluster is built with the local PostgreSQL binaries (the newest
``/usr/lib/postgresql/<version>/bin``) in a fresh temporary directory and listens on its
own free TCP port on 127.0.0.1, so nothing a test does to it can harm the machine's main
PostgreSQL server at 127.0.0.1:5432.

``initdb`` and ``postgres`` refuse to run as root; when the tests run as root, every
server-side command is run as the ``postgres`` system user through ``runuser`` and the
temporary directory is handed over to that user.

Typical use::

    with ThrowawayCluster.create() as cluster:
        cluster.start()
        cluster.create_database("app")
        url = cluster.url("app")
        ...
        timings = cluster.restart("immediate", down_for=0.5)
        print(timings.startup)

Only the standard library is used. Every cluster that has not been destroyed is destroyed
by an ``atexit`` hook, so no server outlives the test process unless that process is
killed outright.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = [
    "ClusterError",
    "PostgresBinariesNotFound",
    "RestartTimings",
    "StopMode",
    "ThrowawayCluster",
    "find_bin_dir",
]

StopMode = Literal["smart", "fast", "immediate"]

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.01
COMMAND_TIMEOUT = 60.0
PROBE_APPLICATION_NAME = "throwaway-cluster-probe"

#: Settings written to the cluster's configuration; ``create(settings=...)`` adds to them.
#: ``fsync`` stays on on purpose: an immediate stop must be followed by a real recovery.
DEFAULT_SETTINGS: Mapping[str, str | int] = {
    "shared_buffers": "32MB",
    "max_connections": 100,
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %q%a ",
}

_PG_PROTOCOL_3 = 196608
_SQLSTATE_CANNOT_CONNECT_NOW = "57P03"
# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 107
_BIND_FAILURE = re.compile(r"could not bind|could not create any TCP/IP sockets")


class ClusterError(RuntimeError):
    """A throwaway cluster could not be created, started, stopped or queried."""


class PostgresBinariesNotFound(ClusterError):
    """No local PostgreSQL installation was found (tests may skip on this)."""


@dataclass(frozen=True)
class RestartTimings:
    """When each step of a restart happened, as ``time.monotonic()`` values."""

    stop_requested: float
    stopped: float
    start_requested: float
    accepting: float

    @property
    def stop_duration(self) -> float:
        """Seconds from asking the server to stop until its postmaster was gone."""
        return self.stopped - self.stop_requested

    @property
    def startup(self) -> float:
        """Seconds from asking the server to start until it accepted a connection."""
        return self.accepting - self.start_requested

    @property
    def downtime(self) -> float:
        """Seconds from asking the server to stop until it accepted a connection again."""
        return self.accepting - self.stop_requested


def find_bin_dir(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """Return the ``bin`` directory of the newest PostgreSQL version installed under *root*."""
    candidates: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in root.glob("*/bin"):
        try:
            version = tuple(int(part) for part in bin_dir.parent.name.split("."))
        except ValueError:
            continue
        if all((bin_dir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            candidates.append((version, bin_dir))
    if not candidates:
        raise PostgresBinariesNotFound(f"no PostgreSQL binaries found under {root}/*/bin")
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_alive(pid: int) -> bool:
    """Whether process *pid* exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The state follows the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _children(parents: set[int]) -> set[int]:
    """Processes whose parent is one of *parents* (Linux ``/proc`` only)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) in parents:
            found.add(int(entry.name))
    return found


def _kill_and_wait(pids: Sequence[int], timeout: float = 10.0) -> None:
    """SIGKILL *pids* in order and wait until none of them is alive."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(_is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def _sqlstate(error_body: bytes) -> str:
    """The SQLSTATE field of an ErrorResponse message body."""
    for field in error_body.split(b"\0"):
        if field[:1] == b"C":
            return field[1:].decode("ascii", "replace")
    return ""


def _conf_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, on its own port on 127.0.0.1.

    Build one with :meth:`create`. Using it as a context manager (or calling
    :meth:`destroy`) stops it and removes its files; the cluster is not started on
    ``__enter__``.
    """

    def __init__(self, root: Path, bin_dir: Path, port: int, run_as: str | None) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        #: The user server-side commands run as (through ``runuser``), or None for ourselves.
        self.run_as = run_as
        self.data_dir = root / "data"
        self.socket_dir = root / "socket"
        self.log_path = root / "postgresql.log"
        self._conf_path = self.data_dir / "throwaway.conf"
        self._settings: dict[str, str | int] = {}
        self._ever_started = False
        self._destroyed = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        base_dir: Path | None = None,
        *,
        bin_dir: Path | None = None,
        settings: Mapping[str, str | int] | None = None,
    ) -> ThrowawayCluster:
        """Run ``initdb`` in a fresh temporary directory and pick a free port.

        *base_dir* is where the temporary directory is made (default: the system temp
        directory); when running as root, the ``postgres`` user must be able to reach it,
        which rules out pytest's ``tmp_path`` (its ``pytest-of-root`` parent is private).
        *settings* are extra ``postgresql.conf`` settings.
        """
        reserved = {"port", "listen_addresses", "unix_socket_directories"} & set(settings or {})
        if reserved:
            raise ValueError(f"the cluster sets {', '.join(sorted(reserved))} itself")
        bin_dir = bin_dir if bin_dir is not None else find_bin_dir()
        run_as = SUPERUSER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="throwaway-pg-", dir=base_dir)).resolve()
        cluster = cls(root, bin_dir, _free_port(), run_as)
        _LIVE.add(cluster)
        try:
            cluster._init(settings or {})
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _init(self, settings: Mapping[str, str | int]) -> None:
        socket_file = self.socket_dir / ".s.PGSQL.65535"
        if len(str(socket_file)) > _MAX_SOCKET_PATH:
            raise ClusterError(
                f"the Unix socket path {socket_file} would be too long; use a shorter base_dir"
            )
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700)
        self._hand_over(self.root, self.data_dir, self.socket_dir)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                # Skipping initdb's final fsync is safe: the files reach the OS page cache,
                # which survives anything a test does to the server (fsync stays on after).
                "--no-sync",
            ],
            as_server_user=True,
            what="initdb",
        )
        self._settings = {
            **DEFAULT_SETTINGS,
            **settings,
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.socket_dir),
        }
        self._write_conf()
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude '{self._conf_path.name}'\n")

    @classmethod
    def create_standby(
        cls,
        primary: ThrowawayCluster,
        base_dir: Path | None = None,
        *,
        settings: Mapping[str, str | int] | None = None,
    ) -> ThrowawayCluster:
        """A streaming replica of *primary*, which must be running: ``pg_basebackup -R``
        (``--write-recovery-conf``) into a fresh temporary directory, on its own free port.

        The primary needs ``wal_level = replica`` and a WAL sender (PostgreSQL's defaults) and
        a ``replication`` line in ``pg_hba.conf`` for 127.0.0.1 (``initdb --auth=trust`` writes
        one). The standby is not started; it streams from the primary once it is.
        """
        root = Path(tempfile.mkdtemp(prefix="throwaway-pg-", dir=base_dir)).resolve()
        standby = cls(root, primary.bin_dir, _free_port(), primary.run_as)
        _LIVE.add(standby)
        try:
            standby._clone(primary, settings or {})
        except BaseException:
            standby.destroy()
            raise
        return standby

    def _clone(self, primary: ThrowawayCluster, settings: Mapping[str, str | int]) -> None:
        self.socket_dir.mkdir(mode=0o700)
        self._hand_over(self.root, self.socket_dir)
        self._run(
            [
                str(self.bin_dir / "pg_basebackup"),
                "--pgdata",
                str(self.data_dir),
                "--host",
                HOST,
                "--port",
                str(primary.port),
                "--username",
                SUPERUSER,
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
            as_server_user=True,
            what="pg_basebackup",
        )
        # The copy includes the primary's configuration, whose included file is rewritten here
        # with this cluster's port and socket directory.
        self._settings = {
            **DEFAULT_SETTINGS,
            **settings,
            "hot_standby": "on",
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.socket_dir),
        }
        self._write_conf()

    def _hand_over(self, *paths: Path) -> None:
        """Give *paths* to the server user (only when running as root)."""
        if self.run_as is None:
            return
        user = pwd.getpwnam(self.run_as)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _write_conf(self) -> None:
        lines = [
            "# Written by tests/faults/cluster.py; read after postgresql.conf.",
            f"port = {self.port}",
            *(f"{name} = {_conf_value(value)}" for name, value in self._settings.items()),
        ]
        self._conf_path.write_text("\n".join(lines) + "\n")
        self._hand_over(self._conf_path)

    # -- running commands ---------------------------------------------------------------

    def _command(self, argv: Sequence[str], as_server_user: bool) -> list[str]:
        if as_server_user and self.run_as is not None:
            return ["runuser", "-u", self.run_as, "--", *argv]
        return list(argv)

    def _env(self) -> dict[str, str]:
        # PG* variables of the test environment (PGHOST, PGPORT, PGDATA...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run(
        self,
        argv: Sequence[str],
        *,
        as_server_user: bool,
        what: str,
        stdin: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> str:
        """Run a command to completion; return its stdout, or raise with its output."""
        try:
            done = subprocess.run(
                self._command(argv, as_server_user),
                input=stdin,
                capture_output=True,
                text=True,
                env=self._env(),
                cwd=self.root,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterError(f"{what} did not finish within {timeout:g} s") from exc
        if done.returncode != 0:
            hint = ""
            if self.run_as is not None and "ermission denied" in done.stderr:
                hint = f"\n(the {self.run_as!r} user must be able to reach {self.root})"
            raise ClusterError(
                f"{what} failed with exit code {done.returncode}:\n"
                f"{done.stdout}{done.stderr}{hint}".rstrip()
            )
        return done.stdout

    def _pg_ctl(self, *args: str) -> list[str]:
        return self._command(
            [str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data_dir), *args],
            as_server_user=True,
        )

    # -- state --------------------------------------------------------------------------

    def _pidfile(self) -> list[str] | None:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id from ``postmaster.pid``, if there is one."""
        lines = self._pidfile()
        if not lines:
            return None
        try:
            return int(lines[0])
        except ValueError:
            return None

    def is_running(self) -> bool:
        """Whether the postmaster is alive (it may still be starting up or shutting down)."""
        pid = self.pid
        return pid is not None and _is_alive(pid)

    def is_accepting(self, timeout: float = 1.0) -> bool:
        """Whether a connection to the server completes its startup right now.

        Speaks just enough of the wire protocol to log in (trust auth) and reach
        ReadyForQuery. Like ``pg_isready``, any answer other than "cannot connect now"
        (starting up, shutting down, in recovery) counts as accepting.
        """
        params = (
            f"user\0{SUPERUSER}\0database\0postgres\0application_name\0{PROBE_APPLICATION_NAME}\0\0"
        ).encode()
        startup = struct.pack("!ii", 8 + len(params), _PG_PROTOCOL_3) + params
        try:
            with socket.create_connection((HOST, self.port), timeout=timeout) as sock:
                sock.sendall(startup)
                while True:
                    kind, length = struct.unpack("!ci", _recv_exact(sock, 5))
                    body = _recv_exact(sock, length - 4)
                    if kind == b"E":
                        return _sqlstate(body) != _SQLSTATE_CANNOT_CONNECT_NOW
                    if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
                        return True  # it wants a password: it is accepting connections
                    if kind == b"Z":
                        sock.sendall(b"X\0\0\0\x04")  # Terminate
                        return True
        except (OSError, struct.error):
            return False

    def url(self, database: str = "postgres") -> str:
        """A libpq-style URL for *database* on this cluster, as the superuser."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def log_tail(self, lines: int = 40, since: int = 0) -> str:
        """The last *lines* lines of the server log (from byte offset *since*)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                text = log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    # -- start and stop -----------------------------------------------------------------

    def start(self, wait: bool = True, timeout: float = START_TIMEOUT) -> float | None:
        """Start the server.

        With *wait*, return the ``time.monotonic()`` at which it first accepted a
        connection (polled every 10 ms), or raise :class:`ClusterError` with the log tail
        after *timeout* seconds. Without, return None at once; see
        :meth:`wait_until_accepting`.

        If the very first start finds the port taken by someone else, a new port is
        picked and the start retried; later starts keep the port :meth:`url` gave out.
        """
        self._check_not_destroyed()
        if self.is_running():
            raise ClusterError(f"the cluster in {self.data_dir} is already running")
        self._remove_stale_lock_files()
        if not wait:
            self._run(
                self._pg_ctl("start", "--no-wait", "--log", str(self.log_path)),
                as_server_user=False,
                what="pg_ctl start",
            )
            self._ever_started = True
            return None
        attempts = 1 if self._ever_started else 3
        for attempt in range(1, attempts + 1):
            log_offset = self._log_size()
            try:
                accepting = self._start_and_wait(timeout, log_offset)
            except ClusterError:
                if attempt < attempts and _BIND_FAILURE.search(self.log_tail(since=log_offset)):
                    self.port = _free_port()
                    self._write_conf()
                    continue
                raise
            self._ever_started = True
            return accepting
        raise AssertionError("unreachable")

    def _start_and_wait(self, timeout: float, log_offset: int) -> float:
        # pg_ctl --wait checks the postmaster's pid file only every 100 ms, so it serves to
        # detect a failed start while we poll for the first accepted connection ourselves.
        launcher = subprocess.Popen(
            self._pg_ctl(
                "start",
                "--wait",
                f"--timeout={int(timeout) + 5}",
                "--log",
                str(self.log_path),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env(),
            cwd=self.root,
            start_new_session=True,
        )
        try:
            accepting = self._wait(time.monotonic() + timeout, launcher, log_offset)
            output, _ = launcher.communicate(timeout=timeout)
        finally:
            if launcher.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
        if launcher.returncode != 0:
            raise ClusterError(self._failure("pg_ctl start failed", output, log_offset))
        return accepting

    def wait_until_accepting(self, timeout: float = START_TIMEOUT) -> float:
        """Poll every 10 ms until the server accepts a connection; return when it did."""
        return self._wait(time.monotonic() + timeout, None, self._log_size())

    def _wait(
        self, deadline: float, launcher: subprocess.Popen[str] | None, log_offset: int
    ) -> float:
        seen_alive = False
        while True:
            if self.is_accepting():
                accepting = time.monotonic()
                lines = self._pidfile() or []
                # Make sure it is our postmaster that answered on the port.
                if len(lines) > 3 and lines[3] == str(self.port) and self.is_running():
                    return accepting
            if launcher is not None and launcher.poll() not in (None, 0):
                output = launcher.stdout.read() if launcher.stdout else ""
                raise ClusterError(self._failure("pg_ctl start failed", output, log_offset))
            if launcher is None:
                running = self.is_running()
                if seen_alive and not running:
                    raise ClusterError(self._failure("the server exited", "", log_offset))
                seen_alive = seen_alive or running
            if time.monotonic() > deadline:
                raise ClusterError(
                    self._failure("the server did not accept connections in time", "", log_offset)
                )
            time.sleep(POLL_INTERVAL)

    def _failure(self, message: str, output: str, log_offset: int) -> str:
        parts = [f"{message} (port {self.port}, data {self.data_dir})"]
        if output.strip():
            parts.append(output.strip())
        parts.append("server log:\n" + self.log_tail(since=log_offset))
        return "\n".join(parts)

    def stop(self, mode: StopMode = "fast", timeout: float = STOP_TIMEOUT) -> float | None:
        """Stop the server with ``pg_ctl stop -m MODE``; do nothing if it is not running.

        Returns the ``time.monotonic()`` at which the postmaster was seen gone (polled
        every 10 ms), or None if it was not running.
        """
        pid = self.pid
        if pid is None or not _is_alive(pid):
            return None
        self._run(
            self._pg_ctl("stop", "--mode", mode, "--no-wait"),
            as_server_user=False,
            what=f"pg_ctl stop -m {mode}",
        )
        deadline = time.monotonic() + timeout
        # The postmaster removes its pid file last, after its children have exited.
        while self._pidfile() is not None and _is_alive(pid):
            if time.monotonic() > deadline:
                raise ClusterError(
                    self._failure(f"the server did not stop ({mode}) in time", "", 0)
                )
            time.sleep(POLL_INTERVAL)
        return time.monotonic()

    def restart(self, mode: StopMode = "fast", down_for: float = 0.0) -> RestartTimings:
        """Stop the server in *mode*, stay down *down_for* seconds, start it again."""
        stop_requested = time.monotonic()
        stopped = self.stop(mode)
        if stopped is None:
            raise ClusterError("restart: the server is not running")
        if down_for > 0:
            time.sleep(down_for)
        start_requested = time.monotonic()
        accepting = self.start(wait=True)
        assert accepting is not None
        return RestartTimings(stop_requested, stopped, start_requested, accepting)

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and all of its children at once.

        The pid file and socket lock file stay behind, as after a real crash; the next
        :meth:`start` runs crash recovery.
        """
        pid = self.pid
        if pid is None or not _is_alive(pid):
            return
        _kill_and_wait([pid, *sorted(_children({pid}))])

    def _remove_stale_lock_files(self) -> None:
        """Remove the lock files of a postmaster that is dead (or a zombie).

        PostgreSQL ignores a lock file whose process is gone, but takes a zombie for a live
        server; where the init process reaps orphans slowly (as in some containers), a
        killed postmaster stays a zombie for a while and would block the next start.
        """
        pid = self.pid
        if pid is not None and not _is_alive(pid):
            self._remove_lock_files()

    def _remove_lock_files(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "postmaster.pid").unlink()
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    # -- SQL ----------------------------------------------------------------------------

    def psql(
        self, sql: str, database: str = "postgres", variables: Mapping[str, str] | None = None
    ) -> str:
        """Run *sql* with ``psql`` as the superuser; return its unaligned, tuples-only output.

        *variables* are set with ``-v`` and can be interpolated safely as ``:'name'``
        (a literal) or ``:"name"`` (an identifier).
        """
        argv = [
            str(self.bin_dir / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--username",
            SUPERUSER,
            "--dbname",
            database,
            "--set",
            "ON_ERROR_STOP=1",
        ]
        for name, value in (variables or {}).items():
            argv += ["--set", f"{name}={value}"]
        # SQL goes through stdin: psql does not interpolate variables in --command.
        return self._run(argv, as_server_user=False, what="psql", stdin=sql)

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE name``."""
        self.psql('CREATE DATABASE :"name";', variables={"name": name})

    def terminate_backends(
        self,
        application_name: str | None = None,
        database: str | None = None,
        timeout: float = 10.0,
    ) -> int:
        """Terminate client backends, optionally only those of an application or database.

        Waits until the terminated backends have exited; returns how many there were.
        """
        conditions = ["pid <> pg_backend_pid()", "backend_type = 'client backend'"]
        variables: dict[str, str] = {}
        if application_name is not None:
            conditions.append("application_name = :'app'")
            variables["app"] = application_name
        if database is not None:
            conditions.append("datname = :'db'")
            variables["db"] = database
        where = " AND ".join(conditions)
        # Pick the victims first (OFFSET 0 keeps the planner from merging the subquery):
        # in one WHERE clause, pg_terminate_backend() may run before the other conditions.
        output = self.psql(
            f"SELECT pid FROM (SELECT pid FROM pg_stat_activity WHERE {where} OFFSET 0) AS v"
            " WHERE pg_terminate_backend(pid);",
            variables=variables,
        )
        pids = [line for line in output.split() if line]
        if pids:
            deadline = time.monotonic() + timeout
            query = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:'pids'::int[]);"
            pid_array = "{" + ",".join(pids) + "}"
            while self.psql(query, variables={"pids": pid_array}).strip() != "0":
                if time.monotonic() > deadline:
                    raise ClusterError(f"backends {pid_array} did not exit within {timeout:g} s")
                time.sleep(POLL_INTERVAL)
        return len(pids)

    # -- teardown -----------------------------------------------------------------------

    def _check_not_destroyed(self) -> None:
        if self._destroyed:
            raise ClusterError(f"the cluster in {self.root} has been destroyed")

    def _postmasters(self) -> set[int]:
        """Live postmasters of this data directory: the pid file's, and any by command line."""
        found = {pid} if (pid := self.pid) is not None and _is_alive(pid) else set()
        data_dir = os.fsencode(self.data_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"postgres") and data_dir in argv:
                found.add(int(entry.name))
        return found

    def destroy(self) -> None:
        """Stop the server (immediate mode) if it runs, make sure no process of it remains,
        and remove its files. Safe to call more than once."""
        if self._destroyed:
            return
        self._destroyed = True
        try:
            if self.is_running():
                with contextlib.suppress(ClusterError):
                    self.stop("immediate", timeout=15.0)
        finally:
            with contextlib.suppress(OSError):
                postmasters = self._postmasters()
                if postmasters:
                    _kill_and_wait([*sorted(postmasters), *sorted(_children(postmasters))])
            shutil.rmtree(self.root, ignore_errors=True)
            _LIVE.discard(self)

    def __enter__(self) -> ThrowawayCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.destroy()

    def __repr__(self) -> str:
        state = "destroyed" if self._destroyed else f"running={self.is_running()}"
        return f"<ThrowawayCluster {self.url()} {self.root} {state}>"


_LIVE: set[ThrowawayCluster] = set()


@atexit.register
def _destroy_all() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.destroy()

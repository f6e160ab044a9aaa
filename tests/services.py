"""Real services for the team-store tests: a private PostgreSQL cluster and a moto S3 server.

Nothing here is faked: ``PostgresCluster`` is a real PostgreSQL (``initdb`` into a fresh
directory under /tmp, listening on 127.0.0.1 and a free port, password auth), ``MotoServer``
is moto's S3 server on 127.0.0.1 and a free port. ``TeamServices`` holds one of each and hands
every test its own ``TeamRemote``: a fresh database and a fresh bucket, so tests never share
state. ``available()`` says why they cannot run here (``make services`` installs PostgreSQL).

As root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` user through ``runuser`` (PostgreSQL
refuses to run as root); otherwise they run as the current user. The cluster's directory is a
``tempfile.mkdtemp()`` in /tmp, not pytest's ``tmp_path``: /tmp/pytest-of-root is 0700, so the
postgres user could not reach a data directory under it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PG_USER = "rewind"
PG_PASSWORD = "rewind-test-pw"
PG_SYSTEM_USER = "postgres"
PG_GLOB = "/usr/lib/postgresql/*/bin/initdb"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"
HOST = "127.0.0.1"

# Credentials moto accepts (any non-empty pair); none looks like a real key.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}

_PORT_ATTEMPTS = 3  # a free port can be taken by another process before the server binds it
_LOG_TAIL = 2000  # characters of a server log quoted in a RuntimeError
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")

# urllib would send even 127.0.0.1 through an http_proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_status(method: str, url: str, timeout: float = 5) -> int:
    """The HTTP status of an empty-bodied ``method`` request to ``url`` (errors included)."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "PUT" else None)
    try:
        with _HTTP.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def pg_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that holds an ``initdb``, if any."""
    found = [Path(p).parent for p in Path("/").glob(PG_GLOB.lstrip("/"))]
    return max(found, key=_pg_version, default=None)


def _pg_version(bin_dir: Path) -> tuple[int, ...]:
    """``(15,)`` for .../postgresql/15/bin, ``(9, 6)`` for .../9.6/bin; unknown names sort first."""
    name = bin_dir.parent.name
    return tuple(int(part) for part in name.split(".")) if re.fullmatch(r"\d+(\.\d+)*", name) else ()


def _is_root() -> bool:
    return os.geteuid() == 0


def available() -> str | None:
    """None when PostgreSQL and moto can both be started here, else the reason why not."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        return f"no PostgreSQL server ({PG_GLOB} is missing): run `make services`"
    missing = [name for name in ("pg_ctl", "psql") if not (bin_dir / name).exists()]
    if missing:
        return f"{bin_dir} has no {', '.join(missing)}"
    if _is_root() and shutil.which("runuser") is None:
        return "running as root, and runuser (to run PostgreSQL as another user) is not on PATH"
    if _is_root() and not _user_exists(PG_SYSTEM_USER):
        return f"running as root, and there is no {PG_SYSTEM_USER!r} user to run PostgreSQL as"
    if not MOTO_SERVER.exists():
        return f"{MOTO_SERVER} is missing: run `make install` (moto[server] is a dev dependency)"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _tail(text: str) -> str:
    return text[-_LOG_TAIL:].strip()


def _pg_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the developer's PG* settings (PGHOST, PGDATA, ...), plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, **extra}


class PostgresCluster:
    """A private PostgreSQL cluster: user ``rewind`` with password ``PG_PASSWORD``, 127.0.0.1.

    ``start()`` runs initdb into a fresh directory under /tmp and starts the server on a free
    port; ``stop()`` stops it and removes the directory. Databases come from ``create_database``.
    """

    user = PG_USER
    password = PG_PASSWORD

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or pg_bin_dir() or Path(PG_GLOB).parent
        self.port = 0
        self.root: Path | None = None

    @property
    def data(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "data"

    @property
    def log(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "server.log"

    def start(self) -> None:
        """initdb, then start on a free port; RuntimeError (with the log's tail) on failure."""
        self.root = Path(tempfile.mkdtemp(prefix="rewind-pg-"))
        try:
            self._initdb()
            self._start_on_free_port()
        except BaseException:
            self._remove()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory; safe to call twice."""
        if self.root is None:
            return
        try:
            if self.port:
                self._shut_down()
        finally:
            self._remove()

    def _shut_down(self) -> None:
        """pg_ctl stop, fast; immediate if that fails; RuntimeError if the server still runs."""
        done = self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        if done.returncode != 0:
            done = self._pg_ctl("-m", "immediate", "-w", "-t", "30", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{_tail(done.stdout + done.stderr)}\n{self._log_tail()}")

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` (lowercase letters, digits, ``_``); returns it."""
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain lowercase identifier: {name!r}")
        done = self.psql(f'CREATE DATABASE "{name}"')
        if done.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE {name} failed: {done.stderr.strip()}")
        return name

    def psql(
        self, sql: str, database: str = "postgres", password: str = PG_PASSWORD
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` through psql over TCP as ``rewind``; never prompts (``-w``), stops on error."""
        conninfo = f"host={HOST} port={self.port} user={self.user} dbname={database}"
        command = [str(self.bin_dir / "psql"), "-X", "-w", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        return subprocess.run(
            [*command, "-d", conninfo, "-c", sql],
            env=_pg_env(PGPASSWORD=password, PGCONNECT_TIMEOUT="10"),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def _initdb(self) -> None:
        assert self.root is not None
        pwfile = self.root / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n")
        self._hand_over(self.root, pwfile)
        done = self._as_postgres(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{_tail(done.stdout + done.stderr)}")

    def _start_on_free_port(self) -> None:
        """pg_ctl start; another try on another port when this one was taken meanwhile."""
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port()
            done = self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "-o", self._server_options(), "start")
            if done.returncode == 0:
                return
            log = self._log_tail()
            if "Address already in use" not in log:
                break
        self.port = 0
        raise RuntimeError(f"PostgreSQL did not start:\n{_tail(done.stdout + done.stderr)}\n{log}")

    def _server_options(self) -> str:
        """Options for the postgres server (pg_ctl runs it through a shell: '' is empty)."""
        return (
            f"-c listen_addresses={HOST} -p {self.port} -c unix_socket_directories=''"
            " -c fsync=off -c max_connections=200"
        )

    def _log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"))
        except OSError:
            return "(no server log)"

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._as_postgres("pg_ctl", "-D", str(self.data), *args)

    def _as_postgres(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the postgres user when we are root (cwd /tmp: readable)."""
        prefix = ["runuser", "-u", PG_SYSTEM_USER, "--"] if _is_root() else []
        return subprocess.run(
            [*prefix, str(self.bin_dir / tool), *args],
            cwd="/tmp",
            env=_pg_env(LC_MESSAGES="C"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    @staticmethod
    def _hand_over(*paths: Path) -> None:
        """As root, give ``paths`` to the postgres user (otherwise they are ours already)."""
        if not _is_root():
            return
        user = pwd.getpwnam(PG_SYSTEM_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self.port = 0


class MotoServer:
    """moto's S3 server on 127.0.0.1 and a free port; state lives in its memory only."""

    def __init__(
        self, executable: Path = MOTO_SERVER, ready_timeout: float = 20, authenticate_after: int | None = None
    ) -> None:
        self.executable = executable
        self.ready_timeout = ready_timeout
        # moto checks credentials (IAM) after this many requests: time to create a user and key
        self.authenticate_after = authenticate_after
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        """Run moto_server and wait until /moto-api/ answers; RuntimeError with its log if not."""
        for _ in range(_PORT_ATTEMPTS):
            self._launch()
            if self._wait_ready():
                return
            log, code = self._log_text(), self._process.poll() if self._process else None
            self.stop()
            if "Address already in use" not in log:
                break
        why = f"exited with code {code}" if code is not None else f"not ready in {self.ready_timeout} s"
        raise RuntimeError(f"moto_server did not start ({why}):\n{_tail(log)}")

    def stop(self) -> None:
        """Terminate moto (kill it if it lingers); safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self.port = 0

    def create_bucket(self, name: str) -> str:
        """Create the bucket ``name`` (a plain HTTP PUT, path style); returns it."""
        if not _BUCKET.fullmatch(name):
            raise ValueError(f"not a plain S3 bucket name: {name!r}")
        status = http_status("PUT", f"{self.endpoint}/{name}")
        if status != 200:
            raise RuntimeError(f"creating bucket {name} answered HTTP {status}")
        return name

    def _launch(self) -> None:
        """Start the process; its output goes to a temporary file (a pipe nobody reads fills)."""
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="rewind-moto-", suffix=".log")
        self._process = subprocess.Popen(
            [str(self.executable), "-H", HOST, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env(),
        )

    def _env(self) -> dict[str, str] | None:
        if self.authenticate_after is None:
            return None
        return {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self.authenticate_after)}

    def _wait_ready(self) -> bool:
        """Poll /moto-api/ until it answers 200; False when moto exits or the timeout passes."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                if http_status("GET", f"{self.endpoint}/moto-api/", timeout=1) == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _log_text(self) -> str:
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(errors="replace")


@dataclass
class TeamRemote:
    """One test's remote: a fresh catalog database and a fresh bucket, and the env to reach them."""

    catalog: str
    data: str
    endpoint: str
    bucket: str
    database: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class TeamServices:
    """A running PostgreSQL cluster and moto server; ``new_remote`` gives each test its own."""

    postgres: PostgresCluster
    moto: MotoServer
    created: int = 0

    @classmethod
    def start(cls) -> TeamServices:
        """Start both (moto is stopped again when PostgreSQL fails to start, and vice versa)."""
        services = cls(PostgresCluster(), MotoServer())
        try:
            services.moto.start()
            services.postgres.start()
        except BaseException:
            services.stop()
            raise
        return services

    def stop(self) -> None:
        """Stop both, the second even when stopping the first fails."""
        try:
            self.postgres.stop()
        finally:
            self.moto.stop()

    def new_remote(self, tag: str) -> TeamRemote:
        """A fresh database ``team_<tag>_<n>`` and bucket ``team-<tag>-<n>`` (``tag`` sanitised)."""
        self.created += 1
        words = re.findall(r"[a-z0-9]+", tag.lower()) or ["x"]
        stem = "-".join(words)[:40].strip("-")
        database = self.postgres.create_database(f"team_{stem.replace('-', '_')}_{self.created}")
        bucket = self.moto.create_bucket(f"team-{stem}-{self.created}")
        return TeamRemote(
            catalog=f"postgres://{PG_USER}@{HOST}:{self.postgres.port}/{database}",
            data=f"s3://{bucket}/team",
            endpoint=self.moto.endpoint,
            bucket=bucket,
            database=database,
            env={"PGPASSWORD": PG_PASSWORD, **AWS_ENV},
        )

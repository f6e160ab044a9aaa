"""A team store opened through DuckDB: its DuckLake catalog on PostgreSQL, its data in S3.

``open_lake(remote, env)`` gives a DuckDB connection (its own in-memory instance, never
the local index's) with three extensions loaded from their PyPI packages' files
(``httpfs``, ``postgres_scanner``, ``ducklake``: nothing is downloaded at run time), an
S3 secret made from the standard AWS variables or profile, and the catalog attached as
``team`` and made current. Credentials stay in memory: the PostgreSQL password is read
by libpq itself (``PGPASSWORD`` or ``~/.pgpass``), the S3 keys go into a temporary secret.

The remote's tables mirror the local index (``rewind.store.migrations``), so the same
queries answer for both; see ``ensure_schema``. Every DuckDB error is turned into one
``RemoteError`` line saying what is wrong (credentials, an unreachable host, a missing
bucket or database) and what to do, with any credential scrubbed from it.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from rewind.errors import FormatVersionError, RemoteError
from rewind.store.fold import sql_string
from rewind.store.migrations import LATEST, migrate
from rewind.store.remotes import AWS_HINT, Remote

__all__ = ["ALIAS", "FORMAT", "Conn", "S3Credentials", "conninfo", "open_lake", "s3_credentials"]

Conn = duckdb.DuckDBPyConnection
ALIAS = "team"
# The remote's format is the local index's schema version it mirrors.
FORMAT = LATEST
EXTENSIONS = (
    ("duckdb_extension_httpfs", "httpfs"),
    ("duckdb_extension_postgres_scanner", "postgres_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
)
INSTALL_HINT = "install the team-store extras: pip install 'rewind[team]' (it pins duckdb 1.5.5)"
# Rows per insert kept in the catalog (PostgreSQL) instead of a small Parquet file in S3;
# `rewind remote compact` moves them out in large files.
INLINE_ROWS = 2000
CONNECT_TIMEOUT_S = 10
ATTACH_TRIES = 5
NO_DATABASE = re.compile(r'FATAL: +database "([^"]*)" does not exist')
DATA_PATH_MISMATCH = re.compile(r'does not match existing data path in the catalog "([^"]*)"')


# --- extensions ------------------------------------------------------------------------


def extension_files() -> list[Path]:
    """The three extension binaries of this duckdb version, or ``RemoteError`` saying why not."""
    files = []
    for module_name, name in EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise RemoteError(f"DuckDB's {name} extension is not installed", hint=INSTALL_HINT) from None
        path = Path(module.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
        path = path / f"{name}.duckdb_extension"
        if not path.is_file():
            raise RemoteError(
                f"the installed {name} extension does not match duckdb {duckdb.__version__}",
                hint=INSTALL_HINT,
            )
        files.append(path)
    return files


# --- credentials -----------------------------------------------------------------------


@dataclass(frozen=True)
class S3Credentials:
    """What the S3 secret is made of; ``endpoint`` is ``host[:port]`` (None: AWS itself)."""

    key_id: str
    secret: str
    session_token: str | None
    region: str
    endpoint: str | None
    use_ssl: bool

    def secret_sql(self, scope: str) -> str:
        options = [
            "TYPE s3",
            f"KEY_ID {sql_string(self.key_id)}",
            f"SECRET {sql_string(self.secret)}",
            f"REGION {sql_string(self.region)}",
            f"SCOPE {sql_string(scope)}",
        ]
        if self.session_token:
            options.append(f"SESSION_TOKEN {sql_string(self.session_token)}")
        if self.endpoint:  # MinIO, R2, a test server: path-style URLs work everywhere
            options += [f"ENDPOINT {sql_string(self.endpoint)}", "URL_STYLE 'path'",
                        f"USE_SSL {'true' if self.use_ssl else 'false'}"]  # fmt: skip
        return f"CREATE OR REPLACE TEMPORARY SECRET rewind_team_s3 ({', '.join(options)})"


def s3_credentials(remote: Remote, env: Mapping[str, str]) -> S3Credentials:
    """S3 credentials from the environment, else from the AWS profile (``AWS_PROFILE``)."""
    profile = _profile(env)
    key_id = env.get("AWS_ACCESS_KEY_ID") or profile.get("aws_access_key_id")
    secret = env.get("AWS_SECRET_ACCESS_KEY") or profile.get("aws_secret_access_key")
    if not key_id or not secret:
        raise RemoteError(f"no S3 credentials for the remote {remote.name!r}", hint=AWS_HINT)
    token = env.get("AWS_SESSION_TOKEN") or profile.get("aws_session_token")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region") or "us-east-1"
    endpoint = remote.endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    host, use_ssl = _endpoint(endpoint) if endpoint else (None, True)
    return S3Credentials(key_id, secret, token, region, host, use_ssl)


def _profile(env: Mapping[str, str]) -> dict[str, str]:
    """The ``[profile]`` section of the shared credentials and config files (merged)."""
    name = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    found: dict[str, str] = {}
    files = (
        (env.get("AWS_CONFIG_FILE") or "~/.aws/config", name if name == "default" else f"profile {name}"),
        (env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", name),
    )
    for path, section in files:
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(os.path.expanduser(path))
        if parser.has_section(section):
            found.update(parser[section])
    return found


def _endpoint(url: str) -> tuple[str, bool]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if not parts.hostname:
        raise RemoteError(f"the S3 endpoint {url!r} is not a URL", hint="e.g. https://s3.example.com:9000")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return host, parts.scheme != "http"


def conninfo(catalog: str) -> str:
    """The libpq keyword string of a ``postgres://USER@HOST:PORT/DB?opt=v`` URL (no password)."""
    parts = urlsplit(catalog)
    words = {"dbname": unquote(parts.path.strip("/")), "host": parts.hostname or "",
             "user": unquote(parts.username or "")}  # fmt: skip
    if parts.port:
        words["port"] = str(parts.port)
    words.update(parse_qsl(parts.query))
    words.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    return " ".join(f"{k}={_libpq_value(v)}" for k, v in words.items())


def _libpq_value(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- opening ---------------------------------------------------------------------------


@contextlib.contextmanager
def open_lake(remote: Remote, env: Mapping[str, str]) -> Iterator[Conn]:
    """The remote's catalog attached as ``team`` (current), its tables made on first use."""
    files = extension_files()
    credentials = s3_credentials(remote, env)
    with remote_errors(remote, credentials):
        conn = duckdb.connect(":memory:", config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False})  # fmt: skip
        try:
            _prepare(conn, files, remote, credentials)
            ensure_schema(conn)
            yield conn
        finally:
            conn.close()


def _prepare(conn: Conn, files: list[Path], remote: Remote, credentials: S3Credentials) -> None:
    for path in files:
        conn.execute(f"LOAD {sql_string(str(path))}")
    conn.execute("SET http_retries = 2")
    conn.execute("SET enable_progress_bar = false")  # DuckDB's own bar would go to stdout
    conn.execute(credentials.secret_sql(remote.data))
    _check_bucket(conn, remote)
    migrate(conn)  # the local schema, in memory: the template of the remote's tables and the staging area
    target = f"ducklake:postgres:{conninfo(remote.catalog)}"
    # The inlining limit is given at each attach: `set_option` persists it, but two machines
    # setting it at once on a new catalog crash DuckDB (SIGSEGV, ducklake 1.5.5).
    options = f"DATA_PATH {sql_string(remote.data + '/lake/')}, DATA_INLINING_ROW_LIMIT {INLINE_ROWS}"
    attach = f"ATTACH {sql_string(target)} AS {ALIAS} ({options})"
    for attempt in range(ATTACH_TRIES):
        try:
            conn.execute(attach)
            return
        except duckdb.Error as exc:  # two machines creating a new catalog at once: one wins
            if "already exists" not in str(exc) or attempt == ATTACH_TRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _check_bucket(conn: Conn, remote: Remote) -> None:
    """Fail now on a missing bucket (or wrong keys), before a new catalog records its data
    path: a listing of a prefix nothing has, one cheap request whatever the bucket holds."""
    conn.execute(f"SELECT count(*) FROM glob({sql_string(remote.data + '/.rewind-probe-*')})").fetchall()


# --- the schema ------------------------------------------------------------------------

# Each table holds rows as pushed; a view of the local index's name shows each once (two
# machines pushing the same session at the same time both append it: rows are identical).
VIEWS = {
    "sessions": "SELECT * EXCLUDE (pushed_at, pushed_by) FROM session_rows "
                "QUALIFY row_number() OVER (PARTITION BY id ORDER BY pushed_at) = 1",
    "steps": "SELECT DISTINCT ON (session_id, step) * FROM step_rows",
    "gaps": "SELECT DISTINCT ON (session_id, step) * FROM gap_rows",
    "blobs": "SELECT DISTINCT ON (sha) * FROM blob_rows",
}  # fmt: skip
TABLES_SQL = """
CREATE TABLE team.session_rows AS SELECT *, 0.0::DOUBLE AS pushed_at, ''::VARCHAR AS pushed_by
    FROM memory.sessions LIMIT 0;
CREATE TABLE team.step_rows AS SELECT * FROM memory.steps LIMIT 0;
CREATE TABLE team.gap_rows AS SELECT * FROM memory.gaps LIMIT 0;
CREATE TABLE team.blob_rows (sha VARCHAR NOT NULL, raw_size BIGINT NOT NULL, bundle VARCHAR NOT NULL,
                             data_offset BIGINT NOT NULL, data_length BIGINT NOT NULL);
CREATE TABLE team.rewind_format (version INTEGER NOT NULL, written_at DOUBLE NOT NULL);
"""


def ensure_schema(conn: Conn) -> None:
    """Check the remote's format: make its tables on a new catalog, add the columns an
    older one lacks, refuse a newer one."""
    version = format_version(conn)
    if version is None:
        _create(conn)
    elif version is not None and version > FORMAT:
        raise FormatVersionError(
            f"the team store is at format {version}; this Rewind knows up to {FORMAT}",
            hint="upgrade Rewind on this machine to use this remote",
        )
    elif version is not None and version < FORMAT:
        _upgrade(conn, version)
    conn.execute(f"USE {ALIAS}")


def format_version(conn: Conn) -> int | None:
    tables = {row[0] for row in conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [ALIAS]).fetchall()}  # fmt: skip
    if "rewind_format" not in tables:
        return None
    row = conn.execute(f"SELECT max(version) FROM {ALIAS}.rewind_format").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _create(conn: Conn) -> None:
    """The tables and views, in one transaction; a machine creating them at the same time wins."""
    try:
        conn.execute("BEGIN")
        conn.execute(TABLES_SQL)
        for name, sql in VIEWS.items():
            conn.execute(f"CREATE VIEW {ALIAS}.{name} AS {sql}")
        conn.execute(f"INSERT INTO {ALIAS}.rewind_format VALUES (?, ?)", [FORMAT, time.time()])
        conn.execute("COMMIT")
    except (duckdb.TransactionException, duckdb.CatalogException):
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        if format_version(conn) is None:  # not another machine creating them: something else
            raise


MIRRORED = {"session_rows": "sessions", "step_rows": "steps", "gap_rows": "gaps"}


def _upgrade(conn: Conn, version: int) -> None:
    """A remote written by an older Rewind: the columns its tables lack, added (as the
    local index's migrations add them), in one transaction."""
    conn.execute("BEGIN")
    for table, template in MIRRORED.items():
        have = _columns(conn, ALIAS, table)
        for name, kind in _columns(conn, "memory", template).items():
            if name not in have:
                conn.execute(f'ALTER TABLE {ALIAS}.{table} ADD COLUMN "{name}" {kind}')
    conn.execute(f"INSERT INTO {ALIAS}.rewind_format VALUES (?, ?)", [FORMAT, time.time()])
    conn.execute("COMMIT")


def _columns(conn: Conn, database: str, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND table_name = ? "
        "ORDER BY column_index", [database, table]).fetchall()  # fmt: skip
    return {name: kind for name, kind in rows}


# --- errors ----------------------------------------------------------------------------


@contextlib.contextmanager
def remote_errors(remote: Remote, credentials: S3Credentials | None = None) -> Iterator[None]:
    """DuckDB errors as one ``RemoteError`` line, credentials scrubbed."""
    try:
        yield
    except duckdb.Error as exc:
        raise _remote_error(remote, _scrubbed(str(exc), credentials)) from None


def _remote_error(remote: Remote, detail: str) -> RemoteError:
    text = detail.lower()
    catalog = urlsplit(remote.catalog)
    where = f"{catalog.hostname}:{catalog.port or 5432}"
    line = _last_line(detail)
    unreachable = "check --endpoint (or AWS_ENDPOINT_URL) and that the server is up"
    fix_bucket = "create it, or point the remote at another: `rewind remote rm` then `add`"
    pg_password = "set PGPASSWORD, or add a line to ~/.pgpass (mode 0600)"
    rules = (  # S3's error codes before connections: "Unable to connect to URL ...: AccessDenied"
        ("password authentication failed",
         f"the catalog at {where} refused the credentials of user {catalog.username!r}", pg_password),
        ("no password supplied", f"the catalog at {where} asks user {catalog.username!r} for a password",
         pg_password),
        ("unable to connect to postgres", f"cannot reach the catalog at {where}: {line}",
         "is PostgreSQL running there, and is the database right? (`rewind remote list`)"),
        ("nosuchbucket", f"the bucket of {remote.data} does not exist", fix_bucket),
        ("bucket does not exist", f"the bucket of {remote.data} does not exist", fix_bucket),
        ("invalidaccesskeyid", "S3 refused the access key", AWS_HINT),
        ("signaturedoesnotmatch", "S3 refused the secret key", AWS_HINT),
        ("accessdenied", f"S3 denied access to {remote.data}", AWS_HINT),
        ("http 403", f"S3 denied access to {remote.data}", AWS_HINT),
        ("403 (forbidden", f"S3 denied access to {remote.data}", AWS_HINT),
        ("http code 403", f"S3 denied access to {remote.data}", AWS_HINT),
        ("unable to connect to url", f"cannot reach the S3 endpoint for {remote.data}: {line}", unreachable),
        ("could not establish connection", f"cannot reach the S3 endpoint for {remote.data}", unreachable),
        ("could not connect to server", f"cannot reach the S3 endpoint for {remote.data}", unreachable),
    )  # fmt: skip
    if missing := NO_DATABASE.search(detail):
        name = missing.group(1)
        create = f"createdb -h {catalog.hostname} -p {catalog.port or 5432} -U {catalog.username} {name}"
        return RemoteError(f"remote {remote.name!r}: the catalog database {name!r} does not exist at {where}",
                           hint=f"create it: {create}")  # fmt: skip
    if moved := DATA_PATH_MISMATCH.search(detail):
        data = moved.group(1).removesuffix("/").removesuffix("/lake")
        return RemoteError(f"remote {remote.name!r}: the catalog keeps its data in {data}, not {remote.data}",
                           hint="give the remote that --data (`rewind remote rm`, then `add`)")  # fmt: skip
    for needle, message, hint in rules:
        if needle in text:
            return RemoteError(f"remote {remote.name!r}: {message}", hint=hint)
    return RemoteError(f"remote {remote.name!r}: {_first_line(detail)}",
                       hint="`rewind remote list` shows its settings")  # fmt: skip


def _scrubbed(text: str, credentials: S3Credentials | None) -> str:
    if credentials is not None:
        for secret in (credentials.secret, credentials.session_token):
            if secret:
                text = text.replace(secret, "***")
    return text


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "failed")[:300]


def _last_line(text: str) -> str:
    """What libpq or the HTTP client said last (after the last "failed:"), shortened."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else "failed"
    return last.rsplit("failed:", 1)[-1].strip()[:200]

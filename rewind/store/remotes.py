"""Team remotes: where a team store lives (``rewind remote add/list/rm``).

A remote is a name for two places: a DuckLake catalog on PostgreSQL
(``postgres://USER@HOST[:PORT]/DB``) and the object storage its data and bodies go to
(``s3://BUCKET[/PREFIX]``, with an optional ``--endpoint`` for MinIO, R2 or a test
server). They are kept in ``$REWIND_HOME/remotes.json`` (mode 0600), written atomically.

Credentials are never written under the home: they come from the standard places
(``PGPASSWORD`` or ``~/.pgpass`` for PostgreSQL; ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL`` or a profile for S3). A URL that carries a
password (user-info, or a ``password=`` parameter) is refused with a message saying where
to put it. What is done with a remote is in ``rewind.store.lake`` and ``rewind.store.team``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rewind.errors import ConfigError, StoreError
from rewind.store.home import Home, ensure_home
from rewind.store.journal import write_json_atomic

__all__ = ["REMOTES_FILE", "Remote", "add_remote", "load_remotes", "pick_remote", "remove_remote"]

REMOTES_FILE = "remotes.json"
FORMAT = 1
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# S3 bucket names: 3-63 lowercase letters, digits, dots and hyphens (R2/MinIO take the same).
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
AWS_HINT = "credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
SECRET_PARAMS = ("password", "passwd", "pass", "secret", "token", "key", "sslpassword")


@dataclass(frozen=True)
class Remote:
    """A team store: its catalog (no password) and its data location."""

    name: str
    catalog: str
    data: str
    endpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_remote(name: str, catalog: str, data: str, endpoint: str | None) -> Remote:
    """A valid remote, or ``ConfigError`` saying what is wrong and what to do."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"invalid remote name {name!r}", hint="use letters, digits, '.', '_' and '-' (up to 64)"
        )
    return Remote(name, _catalog(catalog), _data(data), _endpoint(endpoint) if endpoint else None)


def _catalog(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"--catalog {url!r} is not a PostgreSQL URL",
                          hint="give postgres://USER@HOST:PORT/DB")  # fmt: skip
    if parts.password is not None or _secret_params(parts.query):
        raise ConfigError(
            "--catalog carries a password, and Rewind never writes one under its home",
            hint="put it in PGPASSWORD or ~/.pgpass (a line host:port:db:user:password, mode 0600)",
        )
    if not _port_ok(url) or not parts.hostname or not parts.path.strip("/") or not parts.username:
        raise ConfigError(f"--catalog {_shown(url)!r} needs a user, a host and a database",
                          hint="give postgres://USER@HOST:PORT/DB")  # fmt: skip
    return url


def _port_ok(url: str) -> bool:
    try:
        urlsplit(url).port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return True


def _data(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ConfigError(f"--data {url!r} is not an s3:// URL", hint="give s3://BUCKET/PREFIX")
    if parts.username is not None or parts.password is not None or parts.query:
        raise ConfigError("--data carries credentials or parameters",
                          hint=AWS_HINT)  # fmt: skip
    if not BUCKET.fullmatch(parts.netloc):
        raise ConfigError(f"--data {url!r}: {parts.netloc!r} is not a valid bucket name",
                          hint="3-63 lowercase letters, digits, '.' and '-'")  # fmt: skip
    return f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--endpoint {url!r} is not an http(s) URL", hint="e.g. https://ACCOUNT.r2.cloudflarestorage.com"
        )
    if parts.username is not None or parts.password is not None or _secret_params(parts.query):
        raise ConfigError("--endpoint carries credentials",
                          hint=AWS_HINT)  # fmt: skip
    if not _port_ok(url):
        raise ConfigError("--endpoint has an invalid port")
    return url.rstrip("/")


def _secret_params(query: str) -> bool:
    return any(name.lower() in SECRET_PARAMS for name in parse_qs(query, keep_blank_values=True))


def _shown(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


# --- the file --------------------------------------------------------------------------


def _path(home: Home) -> Path:
    return home.root / REMOTES_FILE


def load_remotes(home: Home) -> dict[str, Remote]:
    """The configured remotes by name; ``StoreError`` naming the file if it is damaged."""
    path = _path(home)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path} cannot be read: {exc}", hint="fix or delete it, then `rewind remote add` again"
        ) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("remotes"), list):
        raise StoreError(f"{path} is not a remotes file this Rewind reads", hint="fix or delete it")
    remotes: dict[str, Remote] = {}
    for item in raw["remotes"]:
        try:
            remote = check_remote(item["name"], item["catalog"], item["data"], item.get("endpoint"))
        except (ConfigError, KeyError, TypeError, AttributeError) as exc:
            raise StoreError(f"{path} holds an invalid remote: {exc}", hint="fix or delete it") from exc
        remotes[remote.name] = remote
    return remotes


def _save(home: Home, remotes: dict[str, Remote]) -> None:
    ensure_home(home)
    doc = {"format": FORMAT, "remotes": [r.to_json() for r in sorted(remotes.values(), key=lambda r: r.name)]}
    write_json_atomic(_path(home), doc, sync=True)


def add_remote(home: Home, remote: Remote) -> None:
    """Add ``remote``; ``ConfigError`` if the name is taken (remove it first)."""
    remotes = load_remotes(home)
    if remote.name in remotes:
        raise ConfigError(f"a remote named {remote.name!r} exists already",
                          hint=f"`rewind remote rm {remote.name}` first, or choose another name")  # fmt: skip
    remotes[remote.name] = remote
    _save(home, remotes)


def remove_remote(home: Home, name: str) -> Remote:
    """Forget the remote ``name`` (nothing on the remote itself changes)."""
    remotes = load_remotes(home)
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise ConfigError(f"no remote named {name!r}", hint=f"configured: {known}")
    removed = remotes.pop(name)
    _save(home, remotes)
    return removed


def pick_remote(home: Home, name: str | None) -> Remote:
    """The remote ``name``, or (None) the only one configured; ``ConfigError`` otherwise."""
    remotes = load_remotes(home)
    if name is not None and name in remotes:
        return remotes[name]
    if name is None and len(remotes) == 1:
        return next(iter(remotes.values()))
    add = "rewind remote add NAME --catalog postgres://USER@HOST:PORT/DB --data s3://BUCKET/PREFIX"
    if not remotes:
        raise ConfigError("no remote is configured" if name is None else f"no remote named {name!r}",
                          hint=f"add one: {add}")  # fmt: skip
    known = ", ".join(sorted(remotes))
    if name is None:
        raise ConfigError(f"several remotes are configured ({known})", hint="choose one with --remote NAME")
    raise ConfigError(f"no remote named {name!r}", hint=f"configured: {known}")

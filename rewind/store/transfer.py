"""Export sessions to a cassette, verify one, import one into a store.

Export reads the sessions and every body they use (and the command's output), refuses if
any of it still looks like a secret (naming the step), and writes the cassette to a
temporary file renamed into place. Import verifies the whole file (structure, every hash,
the signature) before writing anything; then writes each session the store does not
have yet through the store's own writer, keeping its id (ids are global), so a second
import adds nothing. If writing fails half-way, the sessions written by this import are
removed again and the error is raised.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rewind import __version__
from rewind.canon.redact import Scanned
from rewind.core.exchange import Exchange
from rewind.errors import CassetteError, SessionNotFound, StoreError
from rewind.store import cassette, signing
from rewind.store.home import Home, ensure_home, session_pack
from rewind.store.index import Store, step_from_row
from rewind.store.journal import JOURNAL_VERSION, chain_key, check_step, parse_start, step_row
from rewind.store.maintain import remove_sessions
from rewind.store.models import SessionInfo, SessionStart, StepRecord
from rewind.store.writer import SessionWriter

_STEP_FIELDS = frozenset(f.name for f in fields(StepRecord))
_START_FIELDS = ("id", "name", "mode", "started_at", "command", "cwd", "git_commit", "parent_id",
                 "upstreams", "routes", "fingerprint_version", "fork_step", "fault")


@dataclass
class Exported:
    path: Path
    sessions: int
    steps: int
    blobs: int
    bytes: int
    key_id: str | None = None


@dataclass
class Verified:
    sessions: list[dict[str, Any]]
    blobs: int
    bytes: int
    key_id: str | None
    rewind_version: str
    manifest_bytes: builtins.bytes = b""  # what was verified: an import's second pass must read the same


@dataclass
class Imported:
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    key_id: str | None = None


# --- export -----------------------------------------------------------------------------


def export(
    home: Home, refs: Iterable[str], out: Path, sign_key: Path | None = None,
    literals: Iterable[bytes] = (), progress: Callable[[int, int], None] | None = None,
) -> Exported:
    """Write the sessions ``refs`` name to the cassette ``out`` (see module)."""
    manifest, blobs = _collect(Store(home), refs)
    refuse_secrets(manifest.sessions, blobs, tuple(literals))
    signature, key = b"", None
    if sign_key is not None:
        signature, key = signing.sign(manifest.to_bytes(), sign_key)
    total = sum(b.size for b in manifest.blobs)
    done = _Progress(total, progress)
    _write_atomically(out, lambda f: cassette.write(f, manifest, blobs.__getitem__, signature, done))
    steps = sum(len(s["steps"]) for s in manifest.sessions)
    return Exported(out, len(manifest.sessions), steps, len(manifest.blobs), total, key)


class _Progress:
    def __init__(self, total: int, report: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.report = total, 0, report

    def __call__(self, size: int) -> None:
        self.done += size
        if self.report is not None:
            self.report(self.done, self.total)


def _collect(store: Store, refs: Iterable[str]) -> tuple[cassette.Manifest, dict[str, bytes]]:
    sessions: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    seen: set[str] = set()
    for ref in refs:
        info, steps, session_blobs = store.load(ref)
        if info.id in seen:
            continue
        seen.add(info.id)
        sessions.append(session_json(info, steps))
        blobs.update(session_blobs)
    entries = cassette.blob_entries((sha, len(data)) for sha, data in blobs.items())
    return cassette.Manifest(__version__, round(time.time(), 3), sessions, entries), blobs


def session_json(info: SessionInfo, steps: list[StepRecord]) -> dict[str, Any]:
    """A session as the manifest holds it: its start, its end, its steps as journal rows."""
    start = {name: getattr(info, name) for name in _START_FIELDS}
    start["command"] = list(info.command)
    end = {"ended_at": info.ended_at, "exit_code": info.exit_code,
           "stdout_sha": info.stdout_sha, "stderr_sha": info.stderr_sha}
    return {**start, **end, "steps": [step_row(step) for step in steps]}


def refuse_secrets(
    sessions: list[dict[str, Any]], blobs: dict[str, bytes], literals: tuple[bytes, ...],
    what: str = "written",
) -> None:
    """``CassetteError`` naming the first session step (or output) that still looks like a
    secret: a key shape, a secret-named field, or one of ``literals`` (``what``: what was not done)."""
    for session in sessions:
        for row in session["steps"]:
            where = _secret_in(step_from_row(row), blobs, literals)
            if where is not None:
                raise CassetteError(
                    f"session {session['id']} step {row['step']} ({row['method']} {row['url']}) carries "
                    f"what looks like a secret in its {where}: nothing was {what}",
                    hint="re-record it with --redact PATTERN (or $REWIND_HOME/redact.txt), "
                    "or export without that session",
                )
        for label in ("stdout", "stderr"):
            sha = session.get(f"{label}_sha")
            if sha and _found(Exchange(0, 0.0, "GET", "", response_body=blobs[sha]), literals):
                raise CassetteError(f"session {session['id']}'s {label} carries what looks like a secret")


def _secret_in(step: StepRecord, blobs: dict[str, bytes], literals: tuple[bytes, ...]) -> str | None:
    request, response = blobs[step.request_sha], blobs.get(step.response_sha or "", b"")
    parts = {
        "URL or headers": Exchange(0, 0.0, step.method, step.url, step.request_headers,
                                   response_headers=step.response_headers),
        "request body": Exchange(0, 0.0, step.method, "", request_body=request),
        "response body": Exchange(0, 0.0, step.method, "", response_body=response),
    }
    return next((where for where, ex in parts.items() if _found(ex, literals)), None)


def _found(ex: Exchange, literals: tuple[bytes, ...]) -> bool:
    if Scanned.of(ex).secrets:
        return True
    texts = (ex.url.encode(), ex.request_body, ex.response_body,
             *(v.encode("utf-8", "surrogateescape") for _, v in (*ex.request_headers, *ex.response_headers)))
    return any(literal in text for literal in literals for text in texts)


def _write_atomically(out: Path, write: Callable[[Any], None]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rewind-export-", dir=out.parent or Path("."))
    except OSError as exc:
        raise CassetteError(f"cannot write {out}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CassetteError(f"cannot write {out}: {exc.strerror or exc}") from exc
        raise


# --- verify and import ------------------------------------------------------------------


def verify(path: Path, trusted: Path | None = None) -> Verified:
    """Read the whole cassette, check every hash and the signature; nothing is written."""
    with _opened(path) as f:
        opened = cassette.read(f)
    key = signing.check(opened.manifest_bytes, opened.signature, trusted)
    sessions = [checked_session(raw, {b.sha256 for b in opened.manifest.blobs})[0]
                for raw in opened.manifest.sessions]
    return Verified(
        [{"id": s.id, "name": s.name, "steps": n} for s, n in sessions],
        len(opened.manifest.blobs), sum(b.size for b in opened.manifest.blobs), key,
        opened.manifest.rewind_version, opened.manifest_bytes,
    )


def import_cassette(home: Home, path: Path, trusted: Path | None = None) -> Imported:
    """Import every session of the cassette the store does not have (see module)."""
    verified = verify(path, trusted)  # the whole file, before anything is written
    ensure_home(home)
    result = Imported(key_id=verified.key_id)
    wanted = [s["id"] for s in verified.sessions if not _present(home, s["id"])]
    result.present = [s["id"] for s in verified.sessions if s["id"] not in wanted]
    if not wanted:
        return result
    blobs: dict[str, bytes] = {}
    with _opened(path) as f:
        opened = cassette.read(f, blobs.__setitem__)
    if opened.manifest_bytes != verified.manifest_bytes:
        raise CassetteError(f"{path} changed while being imported")
    _write_sessions(home, opened.manifest, blobs, wanted, result)
    return result


def _write_sessions(
    home: Home, manifest: cassette.Manifest, blobs: dict[str, bytes], wanted: list[str], result: Imported
) -> None:
    known = set(blobs)
    try:
        for raw in manifest.sessions:
            if raw.get("id") in wanted and raw["id"] not in result.added:
                (start, _), end, steps = checked_session(raw, known)
                write_session(home, start, end, steps, blobs)
                result.added.append(start.id)
    except (StoreError, OSError) as exc:
        _undo(home, result.added)
        raise CassetteError(f"the import failed and was undone: {exc}") from exc


def write_session(
    home: Home, start: SessionStart, end: dict[str, Any], steps: list[StepRecord], blobs: dict[str, bytes],
    gaps: Iterable[tuple[int, str]] = (),
) -> None:
    """One checked session written through the store's own writer; nothing left if it fails
    (but a pack this write did not create: the same session written meanwhile by another
    import or pull that saw it absent too)."""
    writer = SessionWriter(home, start)  # its journal: no other writer of this session from now
    pack = home.root / session_pack(start.id)
    ours = not pack.exists()  # else written by one that finished: never ours to delete
    try:
        for step_number, reason in gaps:
            writer.add_gap(step_number, reason)
        for step in steps:
            chain = step.method, step.url
            request = writer.put_blob(blobs[step.request_sha], chain_key("request", *chain))
            if step.response_sha is not None:
                writer.put_blob(blobs[step.response_sha], chain_key("response", *chain), request)
            writer.add_step(step)
        out, err = (blobs.get(end.get(k) or "", b"") for k in ("stdout_sha", "stderr_sha"))
        writer.finish(end.get("exit_code"), out, err, end.get("ended_at"))
    except BaseException:
        writer.abort()
        if ours:
            pack.unlink(missing_ok=True)
        raise


def _undo(home: Home, added: list[str]) -> None:
    with contextlib.suppress(StoreError, OSError):
        remove_sessions(home, added)


def _present(home: Home, session_id: str) -> bool:
    try:
        return Store(home).session(session_id).id == session_id
    except SessionNotFound:
        return False


def checked_session(
    raw: dict[str, Any], known: set[str]
) -> tuple[tuple[SessionStart, int], dict[str, Any], list[StepRecord]]:
    """A manifest session as store records, or ``CassetteError`` naming what is wrong."""
    values = {k: raw[k] for k in _START_FIELDS if k in raw}
    start = parse_start({**values, "journal_version": JOURNAL_VERSION})
    if start is None or not isinstance(raw.get("steps"), list):
        raise CassetteError("the cassette describes a session that is not valid")
    steps = list(_steps(start.id, raw["steps"], known))
    end = {k: raw.get(k) for k in ("ended_at", "exit_code", "stdout_sha", "stderr_sha")}
    for label in ("stdout_sha", "stderr_sha"):
        if end[label] is not None and end[label] not in known:
            raise CassetteError(f"session {start.id}'s output is not in the cassette")
    if not _number_or_none(end["ended_at"]) or not _int_or_none(end["exit_code"]):
        raise CassetteError(f"session {start.id}'s end is not valid")
    return (start, len(steps)), end, steps


def _steps(session_id: str, rows: list[Any], known: set[str]) -> Iterator[StepRecord]:
    for number, raw in enumerate(rows, 1):
        try:
            row = check_step(raw, session_id)
            step = step_from_row({k: v for k, v in row.items() if k in _STEP_FIELDS})
        except (ValueError, TypeError, KeyError) as exc:
            raise CassetteError(f"session {session_id} step #{number} is not valid: {exc}") from exc
        step.reason = step.reason or ""
        for sha in (step.request_sha, step.response_sha):
            if sha is not None and sha not in known:
                raise CassetteError(f"session {session_id} step {step.step} names a body the cassette lacks")
        yield step


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _int_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    try:
        f = path.open("rb")
    except OSError as exc:
        raise CassetteError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with f:
        try:
            yield f
        except OSError as exc:
            raise CassetteError(f"cannot read {path}: {exc.strerror or exc}") from exc

"""Sealed session records: a finished session's record as a shared object, and its pointer.

When a session is over, its validated records (start, steps, gaps, skipped lines, end,
status; one JSON object per line, each tagged with ``"record"``) become one *object* in
the shared store, delta-coded against the record of the previous recording of the same
job (same name; unnamed: same command and directory) — a re-run differs from it only in
ids, times and a few bodies, so it costs little. ``sessions/<sid>.rws`` is the session's
*pointer*: its start and the sha256 of its record object, written atomically and synced.

Like every object, a record is kept while something refers to it (its pointer, or a
later record coded against it), so deleting a session never breaks another; ``rewind
doctor`` names a session whose record cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rewind.errors import BlobCorrupt, BlobMissing
from rewind.store.blobs import (
    MAX_DELTA_BASE,
    MAX_DEPTH,
    BlobReader,
    BlobRef,
    PackWriter,
    chain_depth,
    sha256_hex,
)
from rewind.store.home import Home, session_pack
from rewind.store.journal import (
    JOURNAL_VERSION,
    SEALED_SUFFIX,
    SessionRecord,
    Skipped,
    chain_key,
    check_gap,
    check_step,
    line,
    parse_end,
    parse_start,
    reason_of,
    write_json_atomic,
)
from rewind.store.models import SessionStart

SEALED_VERSION = 2
Lookup = Callable[[str], "BlobRef | None"]
# The sessions that may be alike to a start, newest first (from the index, in a big home),
# so that finding the previous recording of a job need not read every pointer.
Candidates = Callable[[SessionStart], Iterable[str]]


@dataclass(frozen=True)
class Pointer:
    """What ``sessions/<sid>.rws`` holds: how the session started, and its record."""

    start: SessionStart
    record: str  # sha256 of the record object


# -- the record as bytes ----------------------------------------------------------------------


def record_lines(record: SessionRecord) -> Iterator[dict[str, Any]]:
    """The lines of a record, in order."""
    yield {"record": "start", "journal_version": JOURNAL_VERSION, **asdict(record.start)}
    yield from ({"record": "step", **row} for row in record.steps)
    yield from ({"record": "gap", "step": g["step"], "reason": g["reason"]} for g in record.gaps)
    yield from ({"record": "skipped", **asdict(s)} for s in record.skipped)
    if record.end is not None:
        yield {"record": "end", **asdict(record.end)}
    yield {"record": "status", "status": record.status}


def record_bytes(record: SessionRecord) -> bytes:
    return b"".join(line(row) for row in record_lines(record))


def parse_record(data: bytes, where: str) -> SessionRecord:
    """A record from its bytes; ``ValueError`` if it has no readable start."""
    rows = [json.loads(raw) for raw in data.splitlines() if raw.strip()]
    if not rows or not isinstance(rows[0], dict) or rows[0].get("record") != "start":
        raise ValueError(f"{where} does not start with a session start")
    start = parse_start(rows[0])
    if start is None:
        raise ValueError(f"{where}: its session start is unreadable")
    record = SessionRecord(start, status="interrupted")
    for number, row in enumerate(rows[1:], 2):
        _add_row(record, row, number, where)
    return record


def _add_row(record: SessionRecord, row: Any, number: int, where: str) -> None:
    kind = row.pop("record", None) if isinstance(row, dict) else None
    try:
        if kind == "step":
            record.steps.append(check_step(row, record.start.id))
        elif kind == "gap":
            record.gaps.append(check_gap(row, record.start.id))
        elif kind == "skipped":
            record.skipped.append(Skipped(**row))
        elif kind == "end":
            record.end = parse_end(row)
        elif kind == "status" and row.get("status") in ("complete", "interrupted"):
            record.status = row["status"]
    except (ValueError, TypeError) as e:
        record.skipped.append(Skipped(where, number, reason_of(e)))


# -- pointers ------------------------------------------------------------------------------------


def write_pointer(path: Path, start: SessionStart, record_sha: str) -> None:
    """Write a session's pointer atomically and durably (temporary file, fsync, rename)."""
    pointer = {"sealed_version": SEALED_VERSION, "record": record_sha, "start": asdict(start)}
    write_json_atomic(path, pointer, sync=True)


def read_pointer(path: Path) -> Pointer:
    """A session's pointer; ``ValueError`` (or ``OSError``) if it is unreadable."""
    raw = json.loads(path.read_bytes())
    if not isinstance(raw, dict) or raw.get("sealed_version") != SEALED_VERSION:
        raise ValueError(f"{path} is not a sealed session pointer this Rewind reads")
    start = parse_start({**(raw.get("start") or {}), "journal_version": JOURNAL_VERSION})
    sha = raw.get("record")
    if start is None or not isinstance(sha, str) or len(sha) != 64:
        raise ValueError(f"{path}: its session start or record is unreadable")
    return Pointer(start, sha)


def read_sealed(home: Home, path: Path, lookup: Lookup) -> SessionRecord:
    """A sealed session's record; ``ValueError`` saying why if it cannot be read."""
    pointer = read_pointer(path)
    return parse_record(read_object(home, pointer.record, lookup, f"the record of {path.name}"), str(path))


def read_object(home: Home, sha: str, lookup: Lookup, what: str) -> bytes:
    ref = lookup(sha)
    if ref is None:
        raise ValueError(f"{what} ({sha[:12]}) is in no pack")
    try:
        return BlobReader(home.root, lookup).get(ref)
    except (BlobMissing, BlobCorrupt) as e:
        raise ValueError(f"{what} is damaged: {e}") from None


def pointers(home: Home) -> Iterator[tuple[Path, Pointer | None, str | None]]:
    """Every sealed session's pointer (or why it cannot be read)."""
    for path in sorted(home.sessions_dir.glob(f"*{SEALED_SUFFIX}")):
        try:
            yield path, read_pointer(path), None
        except (OSError, ValueError) as e:
            yield path, None, str(e)


# -- sealing -------------------------------------------------------------------------------------


def seal_record(
    home: Home, record: SessionRecord, lookup: Lookup, stored: Lookup | None = None,
    candidates: Candidates | None = None,
) -> BlobRef | None:
    """Store ``record`` as an object (delta-coded against the previous recording of the
    same job) and write its pointer. Returns the new object's reference, or ``None`` if
    an identical record was stored already (``stored``: the cheap check for that, default
    ``lookup``; a copy it misses is only stored twice). ``candidates``: see ``newest_alike``."""
    data = record_bytes(record)
    sha = sha256_hex(data)
    ref = None
    if (stored or lookup)(sha) is None:
        pack = PackWriter(home.root, session_pack(record.start.id))
        try:
            ref = pack.put(sha, data, _record_base(home, record.start, lookup, len(data), candidates))
        finally:
            pack.close()
    home.sessions_dir.mkdir(mode=0o700, exist_ok=True)
    write_pointer(home.sealed_record(record.start.id), record.start, sha)
    return ref


def _record_base(
    home: Home, start: SessionStart, lookup: Lookup, size: int, candidates: Candidates | None
) -> tuple[str, bytes] | None:
    earlier = newest_alike(home, start, candidates)
    if earlier is None or size > MAX_DELTA_BASE or chain_depth(earlier.record, lookup) >= MAX_DEPTH - 1:
        return None
    try:
        return earlier.record, read_object(home, earlier.record, lookup, "an earlier record")
    except ValueError:
        return None  # a damaged earlier record: this one stands alone


def newest_alike(home: Home, start: SessionStart, candidates: Candidates | None = None) -> Pointer | None:
    """The pointer of the newest other sealed recording of the same job: the first readable
    one alike among ``candidates`` (a hint: missing it only costs a less compact delta), else
    found by reading every pointer."""
    if candidates is not None:
        return next(_readable_alike(home, start, candidates(start)), None)
    best: Pointer | None = None
    for _, pointer, _ in pointers(home):
        if pointer is None or pointer.start.id == start.id or not _alike(pointer.start, start):
            continue
        if best is None or pointer.start.started_at > best.start.started_at:
            best = pointer
    return best


def _readable_alike(home: Home, start: SessionStart, ids: Iterable[str]) -> Iterator[Pointer]:
    for sid in ids:
        try:
            pointer = read_pointer(home.sealed_record(sid))
        except (OSError, ValueError):
            continue  # not sealed yet, or damaged
        if pointer.start.id != start.id and _alike(pointer.start, start):
            yield pointer


def _alike(a: SessionStart, b: SessionStart) -> bool:
    if a.name or b.name:
        return a.name == b.name
    return (a.command, a.cwd) == (b.command, b.cwd)


# -- the previous recording's bodies, for delta coding -------------------------------------------


def earlier_blobs(
    home: Home, start: SessionStart, lookup: Lookup, candidates: Candidates | None = None
) -> dict[tuple[str, int], str]:
    """(chain, n) -> sha of the n-th blob of each chain in the newest sealed recording
    of the same job; empty if there is none or it cannot be read."""
    earlier = newest_alike(home, start, candidates)
    if earlier is None:
        return {}
    try:
        record = parse_record(read_object(home, earlier.record, lookup, "an earlier record"), "earlier")
    except ValueError:
        return {}
    return chain_positions(record)


def chain_positions(record: SessionRecord) -> dict[tuple[str, int], str]:
    positions: dict[tuple[str, int], str] = {}
    counts: dict[str, int] = {}
    for row in sorted(record.steps, key=lambda r: r["step"]):
        for part, sha in (("request", row["request_sha"]), ("response", row.get("response_sha"))):
            if sha is None:
                continue
            key = chain_key(part, row["method"], row["url"])
            positions[(key, counts.get(key, 0))] = sha
            counts[key] = counts.get(key, 0) + 1
    return positions

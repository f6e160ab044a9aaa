"""Read-only queries for ``rewind diff`` and ``rewind bisect``: two sessions in one open.

    compare_rows(store, ref_a, ref_b)  ->  (Side, Side)   each: SessionInfo + [CompareRow]
    step_details(store, [(session_id, step), ...])  ->  {key: StepDetail}   with bodies

A ``CompareRow`` holds only what aligning needs, the call slot worked out by the query
(``METHOD host/path``: no scheme, no query); ten thousand of them load in a few tens of
milliseconds, where ``Store.steps`` builds full ``StepRecord`` s in about ten times that.
The few steps an analysis looks at closely are read with their bodies in one more open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewind.core.exchange import Headers
from rewind.errors import BlobMissing
from rewind.store.blobs import BlobReader, BlobRef
from rewind.store.fold import object_refs
from rewind.store.index import Conn, open_index, resolve, session_infos
from rewind.store.journal import decode_headers
from rewind.store.models import SessionInfo
from rewind.store.sqlargs import ANY_INTEGER, joined

if TYPE_CHECKING:
    from rewind.store.index import Store

__all__ = ["CompareRow", "Side", "StepDetail", "StepKey", "compare_rows", "step_details"]

ROWS_SQL = """
SELECT step, kind, method, method || ' ' || split_part(split_part(url, '://', 2), '?', 1) AS endpoint,
       fingerprint, meaning, model, response_model
FROM steps WHERE session_id = ? ORDER BY step
"""
DETAILS_SQL = f"""
SELECT session_id, step, url, provider, status, error, request_sha, response_sha,
       CAST(request_headers AS VARCHAR), CAST(response_headers AS VARCHAR)
FROM steps WHERE session_id = ? AND step = {ANY_INTEGER}
"""


@dataclass(frozen=True)
class CompareRow:
    """One step as aligning two runs needs it: what it asked and what it got, in brief."""

    step: int
    kind: str
    method: str
    endpoint: str  # "POST api.openai.com/v1/chat/completions": no scheme, no query
    fingerprint: str
    meaning: str | None  # None for steps recorded before meanings were kept
    model: str | None
    response_model: str | None


@dataclass(frozen=True)
class Side:
    """One session and its steps, in step order."""

    info: SessionInfo
    rows: list[CompareRow]


@dataclass(frozen=True)
class StepDetail:
    """One step looked at closely: its request and response as recorded (redacted)."""

    session_id: str
    step: int
    url: str
    provider: str | None
    status: int | None
    error: str | None
    request_headers: Headers
    response_headers: Headers
    request_body: bytes
    response_body: bytes


StepKey = tuple[str, int]  # (session id, step number)


def compare_rows(store: Store, ref_a: str, ref_b: str) -> tuple[Side, Side]:
    """Both sessions ``ref_a`` and ``ref_b`` name, read under one open of the index."""
    with open_index(store.home, store.lock_timeout, store.warn) as conn:
        sides = []
        for ref in (ref_a, ref_b):
            info = session_infos(conn, "WHERE s.id = ?", [resolve(conn, ref)])[0]
            rows = conn.execute(ROWS_SQL, [info.id]).fetchall()
            sides.append(Side(info, [CompareRow(*row) for row in rows]))
    return sides[0], sides[1]


def step_details(store: Store, keys: list[StepKey]) -> dict[StepKey, StepDetail]:
    """The steps ``keys`` name with their bodies, read under one open of the index."""
    by_session: dict[str, list[int]] = {}
    for session_id, step in keys:
        by_session.setdefault(session_id, []).append(step)
    if not by_session:
        return {}
    with open_index(store.home, store.lock_timeout, store.warn) as conn:
        rows = [row for sid, steps in by_session.items() for row in _rows(conn, sid, steps)]
        shas = sorted({sha for row in rows for sha in row[6:8] if sha is not None})
        refs = object_refs(conn, shas)
    blobs = _read(store, shas, refs)
    return {(row[0], row[1]): _detail(row, blobs) for row in rows}


def _rows(conn: Conn, session_id: str, steps: list[int]) -> list[tuple[Any, ...]]:
    if not steps:
        return []
    return conn.execute(DETAILS_SQL, [session_id, joined(steps)]).fetchall()


def _detail(row: tuple[Any, ...], blobs: dict[str, bytes]) -> StepDetail:
    session_id, step, url, provider, status, error, request_sha, response_sha, req_h, resp_h = row
    response = blobs[response_sha] if response_sha is not None else b""
    return StepDetail(
        session_id,
        step,
        url,
        provider,
        status,
        error,
        _headers(req_h),
        _headers(resp_h),
        blobs[request_sha],
        response,
    )


def _headers(text: str | None) -> Headers:
    return decode_headers(json.loads(text)) if text else ()


def _read(store: Store, shas: list[str], refs: dict[str, BlobRef]) -> dict[str, bytes]:
    missing = [sha for sha in shas if sha not in refs]
    if missing:
        hint = "`rewind doctor` lists what is damaged"
        raise BlobMissing(f"blob {missing[0]} is not in the store", hint=hint)
    reader = BlobReader(store.home.root, refs.get)
    return {sha: reader.get(refs[sha]) for sha in shas}

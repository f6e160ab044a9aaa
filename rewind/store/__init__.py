"""Store: shared content-addressed objects in packs, per-session records, a DuckDB index.

DuckDB and zstandard stay in this package. The full format is docs/store.md.

Layout under the home (``Home``; ``--home`` > ``$REWIND_HOME`` > ``~/.rewind``):
    ca/                 CA and trust bundle (rewind.capture.ca writes it)
    index.duckdb        the index: a cache of the files below, rebuilt by `rewind doctor --repair`
    index.lock          flock held while any process has the index open (briefly)
    gc.lock             shared-locked by recorders, exclusively by `rewind gc`
    sessions/<sid>/     the journal of a session being recorded (or crashed, until folded)
    sessions/<sid>.rws  the sealed record of a finished session
    objects/*.pack      bodies, zstd-compressed and delta-coded, shared by every session

The recording process never opens DuckDB: it appends to its journal and pack
(``SessionWriter``). Readers (``Store``) take the lock, fold journals into DuckDB, read,
and close. So ``rewind list`` works during a recording, two recordings run at once, and
``kill -9`` of a recorder loses no completed step.

Public API (loaded on first use, so importing ``rewind.store.home`` costs no DuckDB):
    Home(root) .ca_dir .index_path .lock_path .sessions_dir .objects_dir ...
    resolve_home(explicit: str | None, environ=None) -> Home
    new_session_id() -> str                                   12 lower-case hex chars
    SessionStart, SessionInfo, StepRecord, Gap                plain records (models.py)
    SessionWriter(home, start): put_blob(bytes, chain=None, near=None) -> sha;
        add_step(StepRecord); add_gap(step, reason); finish(exit_code, stdout, stderr,
        ended_at=None); close(); abort(); .session_id .step_count .gaps .problems
    exchange_to_step(ex, writer, session_id, redaction) -> StepRecord
    Store(home): sessions(limit=, name=, since=); session(ref); steps(sid); gaps(sid);
        blob(sha); load(ref) -> (SessionInfo, steps, {sha: bytes}); fold()
    BlobRef, BlobStore (protocol for another blob backend)
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "BlobRef": "blobs",
    "BlobStore": "blobs",
    "Home": "home",
    "resolve_home": "home",
    "new_session_id": "ids",
    "Store": "index",
    "exchange_to_step": "ingest",
    "Gap": "models",
    "SessionInfo": "models",
    "SessionStart": "models",
    "StepRecord": "models",
    "SessionWriter": "writer",
}

__all__ = [
    "BlobRef",
    "BlobStore",
    "Gap",
    "Home",
    "SessionInfo",
    "SessionStart",
    "SessionWriter",
    "StepRecord",
    "Store",
    "exchange_to_step",
    "new_session_id",
    "resolve_home",
]


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'rewind.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rewind.store.{module}"), name)

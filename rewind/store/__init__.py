"""Store: content-addressed blobs in pack files, per-session journals, a DuckDB index.

DuckDB and zstandard stay in this package. The full format is docs/store.md.

Layout under the home (``Home``; ``--home`` > ``$REWIND_HOME`` > ``~/.rewind``):
    ca/                 CA and trust bundle (rewind.capture.ca writes it)
    index.duckdb        the index, changed only by numbered migrations
    index.lock          flock held while any process has the index open (briefly)
    journal/<sid>/      session.json, steps.jsonl, blobs.jsonl, end.json of a session
                        not yet folded (being recorded, or just finished / crashed)
    packs/<sid>.pack    zstd-compressed blobs of that session, appended

The recording process never opens DuckDB: it appends to its journal and pack
(``SessionWriter``). Readers (``Store``) take the lock, fold journals into DuckDB with
bulk ``read_json``, read, and close. So ``rewind list`` works during a recording,
two recordings run at once, and ``kill -9`` of a recorder loses no completed step.

Public API:
    Home(root) .ca_dir .index_path .lock_path .journal_dir .packs_dir
    resolve_home(explicit: str | None, environ=None) -> Home
    new_session_id() -> str                                   12 lower-case hex chars
    SessionStart, SessionInfo, StepRecord                     plain records (models.py)
    SessionWriter(home, start): put_blob(bytes) -> sha; add_step(StepRecord);
        finish(exit_code, stdout, stderr, ended_at=None); close(); abort();
        .session_id .step_count .total_tokens
    exchange_to_step(ex, writer, session_id, policy) -> StepRecord
        redacts, fingerprints, stores both bodies; the caller then calls add_step
    Store(home): sessions() -> list[SessionInfo] (newest first); session(ref) -> SessionInfo;
        steps(session_id) -> list[StepRecord]; blob(sha) -> bytes;
        load(ref) -> (SessionInfo, steps, {sha: bytes}); fold()
    BlobRef, BlobStore (protocol for another blob backend)
"""

from __future__ import annotations

from rewind.store.blobs import BlobRef, BlobStore
from rewind.store.home import Home, resolve_home
from rewind.store.ids import new_session_id
from rewind.store.index import Store
from rewind.store.ingest import exchange_to_step
from rewind.store.models import SessionInfo, SessionStart, StepRecord
from rewind.store.writer import SessionWriter

__all__ = [
    "BlobRef",
    "BlobStore",
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

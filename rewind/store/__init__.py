"""Store: content-addressed blobs in pack files, per-session journals, a DuckDB index.

STUB — interface contract (to be implemented). DuckDB and zstandard stay in this package.

Layout under the home (``rewind.store.home.Home``):
    ca/                 CA and trust bundle (rewind.capture.ca writes it)
    index.duckdb        the index, changed only by numbered migrations
    index.lock          flock held while any process has the index open (briefly)
    journal/<sid>/      append-only JSON-lines journal of a session being recorded
    packs/<sid>.pack    zstd-compressed blobs of that session, appended

The recording process never opens DuckDB: it appends to its journal and pack.
Readers take the lock, fold finished/live/crashed journals into DuckDB (bulk
``read_json``), read, and close. So ``rewind list`` works during a recording,
two recordings run at once, and ``kill -9`` of a recorder loses no completed step.

Public API:
    home.py:     Home(root: Path) with .ca_dir .index_path .lock_path .journal_dir .packs_dir;
                 resolve_home(explicit: str | None, environ) -> Home (--home > REWIND_HOME > ~/.rewind)
    models.py:   SessionStart, SessionInfo, StepRecord (dataclasses, see there)
    writer.py:   SessionWriter(home, start: SessionStart): put_blob(bytes) -> sha;
                 add_step(StepRecord); finish(exit_code, stdout, stderr, ended_at) -> SessionInfo
    ingest.py:   exchange_to_step(ex: Exchange, writer, policy) -> StepRecord  (redact,
                 fingerprint, provider/model/usage, blobs) — composes capture + canon + store
    index.py:    Store(home): sessions() -> list[SessionInfo]; session(ref) -> SessionInfo;
                 steps(session_id) -> list[StepRecord]; blob(sha) -> bytes (hash verified)
"""

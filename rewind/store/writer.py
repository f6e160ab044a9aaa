"""``SessionWriter``: what a recording process uses to keep one session.

It appends blobs to the session's pack and steps to its journal, and never opens the
DuckDB index until ``finish``, when it folds its own journal with one short open (if
that fails, the next reader folds it). Thread-safe: the proxy thread adds steps while
the main thread finishes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from types import TracebackType

from rewind.errors import StoreError
from rewind.store.blobs import PackStore, pack_path, sha256_hex
from rewind.store.home import Home
from rewind.store.index import Store
from rewind.store.journal import JournalWriter, SessionEnd
from rewind.store.models import SessionStart, StepRecord

FINISH_FOLD_TIMEOUT = 5.0


class SessionWriter:
    """Records one session: blobs to ``packs/<sid>.pack``, steps to ``journal/<sid>/``."""

    fold_timeout = FINISH_FOLD_TIMEOUT

    def __init__(self, home: Home, start: SessionStart) -> None:
        self.home = home
        self.start = replace(start, pid=start.pid or os.getpid())
        self.step_count = 0
        self.total_tokens = 0
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._pack = PackStore(home.packs_dir, start.id)
        with _io_errors(home):
            self._journal = JournalWriter(home.session_journal(start.id), self.start)
        self._open = True

    @property
    def session_id(self) -> str:
        return self.start.id

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` (once per session) and return its sha256."""
        sha = sha256_hex(data)
        with self._lock:
            self._check_open()
            if sha not in self._seen:
                with _io_errors(self.home):
                    self._journal.append_blob(self._pack.put(sha, data))
                self._seen.add(sha)
        return sha

    def add_step(self, rec: StepRecord) -> None:
        """Append one step; its blobs must have been put already."""
        with self._lock:
            self._check_open()
            with _io_errors(self.home):
                self._journal.append_step(rec)
            self.step_count += 1
            self.total_tokens += (rec.input_tokens or 0) + (rec.output_tokens or 0)

    def finish(
        self, exit_code: int | None, stdout: bytes = b"", stderr: bytes = b"",
        ended_at: float | None = None,
    ) -> None:
        """Keep the command's output, mark the session complete and fold it."""
        out, err = self.put_blob(stdout), self.put_blob(stderr)
        end = SessionEnd(exit_code, time.time() if ended_at is None else ended_at, out, err)
        with self._lock, _io_errors(self.home):
            self._journal.write_end(end)
            self._close()
        self._fold()

    def close(self) -> None:
        """Close the files; an unfinished session reads as interrupted once we exit."""
        with self._lock:
            self._close()

    def abort(self) -> None:
        """Discard the session: nothing of it is left in the store."""
        self.close()
        shutil.rmtree(self.home.session_journal(self.session_id), ignore_errors=True)
        pack_path(self.home.packs_dir, self.session_id).unlink(missing_ok=True)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError(f"session {self.session_id} is already closed")

    def _close(self) -> None:
        self._open = False
        self._journal.close()
        self._pack.close()

    def _fold(self) -> None:
        try:
            Store(self.home, lock_timeout=self.fold_timeout).fold()
        except StoreError:
            pass  # the journal stays; the next reader folds it


@contextlib.contextmanager
def _io_errors(home: Home) -> Iterator[None]:
    """An ``OSError`` (disk full, no permission) as a ``StoreError`` naming the file."""
    try:
        yield
    except OSError as e:
        where = e.filename or home.root
        raise StoreError(f"cannot write to the store at {where}: {e.strerror}") from None

"""``SessionWriter``: what a recording process uses to keep one session.

It appends objects to its own pack (``objects/<sid>.pack``) and records to its journal
(``sessions/<sid>/``), and opens the DuckDB index only at ``finish``, when it folds (and
so seals) its own journal with one short open (if that fails, the next reader does it),
and, in a home of many packs, once at the start, to learn what the store holds.
Thread-safe: the proxy's sink thread adds steps while the main thread finishes.

Bodies are stored once per store: a body whose sha256 is already in any pack is not
written again (the copy there is verified first). A body given a ``chain`` key (say,
the requests to one endpoint) is delta-coded against the previous body of that chain.
While it records, the writer holds ``live.lock`` (so readers know the session is live,
whatever PID namespace they are in) and a shared lock on ``gc.lock`` (so ``rewind gc``
never removes an object this recording refers to).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from types import TracebackType
from typing import Any

from rewind.errors import BlobCorrupt, BlobMissing, StoreBusy, StoreError
from rewind.store.blobs import (
    MAX_DELTA_BASE,
    MAX_DEPTH,
    MIN_DELTA_SIZE,
    BlobReader,
    BlobRef,
    PackWriter,
    chain_depth,
    iter_objects,
    sha256_hex,
)
from rewind.store.home import Home, ensure_home, session_pack
from rewind.store.journal import JournalWriter, SessionEnd
from rewind.store.models import Gap, SessionStart, StepRecord
from rewind.store.sealed import earlier_blobs

FINISH_FOLD_TIMEOUT = 5.0
# Above this many packs, a recording learns the store's objects from the index, not by
# reading every pack (O(objects in the home) for each recording: ~10 s at a million).
SCAN_PACKS_MAX = 64
INDEX_WAIT = 2.0
RECENT = 4
Base = tuple[str, bytes, int]  # sha, raw bytes, chain depth


class SessionWriter:
    """Records one session: objects to its pack, records to ``sessions/<sid>/``."""

    fold_timeout = FINISH_FOLD_TIMEOUT

    def __init__(self, home: Home, start: SessionStart) -> None:
        self.home = home
        self.start = replace(start, pid=start.pid or os.getpid())
        self.step_count = 0
        self.total_tokens = 0
        self.gaps: list[Gap] = []
        self.problems: list[str] = []  # losses that are not exchanges (the command's output)
        self._lock = threading.Lock()
        self._known: KnownObjects | None = None  # objects in the store, by sha
        self._alike: list[str] | None = None  # from the index: sessions maybe of the same job
        self._depth: dict[str, int] = {}
        self._verified: set[str] = set()
        self._bases: dict[str, Base] = {}
        self._counts: dict[str, int] = {}
        self._recent: dict[str, bytes] = {}  # the last blobs put, for ``near``
        self._earlier_blobs: dict[tuple[str, int], str] | None = None
        self._blob_reader: BlobReader | None = None
        with _io_errors(home):
            ensure_home(home)
            self._gc_lock: int | None = _shared_lock(home)
            try:
                self._journal = self._new_journal()
            except BaseException:
                os.close(self._gc_lock)  # no writer: it must not keep `rewind gc` waiting
                raise
        self._pack = PackWriter(home.root, session_pack(start.id))
        self._open = True

    def _new_journal(self) -> JournalWriter:
        path = self.home.session_journal(self.start.id)
        try:
            return JournalWriter(path, self.start)
        except FileExistsError:
            raise StoreBusy(
                f"session {self.start.id} is being written by another process (its journal {path} exists)",
                hint="wait for that import or pull to finish, then try again",
            ) from None

    @property
    def session_id(self) -> str:
        return self.start.id

    def put_blob(self, data: bytes, chain: str | None = None, near: str | None = None) -> str:
        """Store ``data`` (once per store) and return its sha256.

        A blob of a ``chain`` is delta-coded against the same blob of the previous
        recording of this session's name or command (its n-th of that chain), which a
        re-run reproduces nearly byte for byte; failing that, against ``near`` (a blob
        just put, e.g. a response's own request, which it often quotes), else against
        the previous blob of the chain in this session (an agent resends its
        conversation)."""
        sha = sha256_hex(data)
        with self._lock:
            self._check_open()
            with _io_errors(self.home):
                if not self._have(sha, data):
                    self._write(sha, data, self._base_for(chain, near, len(data)))
            if chain is not None:
                self._advance(chain, sha, data)
            self._remember(sha, data)
        return sha

    def prepare(self) -> None:
        """Scan the packs and read the previous recording of this job now, so that the
        first ``put_blob`` (on a response's path) need not. Call it from a thread of its
        own while the agent starts; ``put_blob`` does the same on first use anyway. A
        session closed first (the proxy could not start) is left alone: the process may be
        ending, and a thread still reading packs or the index then can crash it."""
        with self._lock:
            if not self._open:
                return
            self._known_objects()
            self._reference()

    def add_step(self, rec: StepRecord) -> None:
        """Append one step; its blobs must have been put already."""
        with self._lock:
            self._check_open()
            with _io_errors(self.home):
                self._journal.append_step(rec)
            self.step_count += 1
            self.total_tokens += (rec.input_tokens or 0) + (rec.output_tokens or 0)

    def amend_step(self, rec: StepRecord) -> None:
        """Journal a step again, completed (its usage, meaning, tag...); the last line of a
        step is the one that counts (``journal.read_journal``)."""
        with self._lock:
            self._check_open()
            with _io_errors(self.home):
                self._journal.append_step(rec)
            self.total_tokens += (rec.input_tokens or 0) + (rec.output_tokens or 0)

    def add_gap(self, step: int, reason: str) -> None:
        """Note an exchange that could not be stored, so the session shows the gap."""
        gap = Gap(step, reason)
        with self._lock:
            self.gaps.append(gap)
            if self._open:
                with contextlib.suppress(OSError):
                    self._journal.append_gap(gap)

    def finish(
        self, exit_code: int | None, stdout: bytes = b"", stderr: bytes = b"",
        ended_at: float | None = None,
    ) -> None:
        """Keep the command's output, mark the session complete and fold it."""
        out, err = self._output(stdout, "stdout"), self._output(stderr, "stderr")
        end = SessionEnd(exit_code, time.time() if ended_at is None else ended_at, out, err)
        with self._lock, _io_errors(self.home):
            self._journal.write_end(end)
            self._open = False
            self._pack.close()
        self._fold()
        self.close()

    def _output(self, data: bytes, label: str) -> str | None:
        """The command's recorded output; if it cannot be stored, the session ends anyway
        and the loss is noted (``problems``)."""
        try:
            return self.put_blob(data)
        except StoreError as e:
            self.problems.append(f"the command's {label} could not be stored: {e}")
            return None

    def close(self) -> None:
        """Close the files and release the locks; an unfinished session reads as
        interrupted from then on."""
        with self._lock:
            self._open = False
            self._journal.close()
            self._pack.close()
            if self._gc_lock is not None:
                os.close(self._gc_lock)
                self._gc_lock = None

    def abort(self) -> None:
        """Discard the session: its journal goes; objects only it wrote wait for gc."""
        self.close()
        shutil.rmtree(self.home.session_journal(self.session_id), ignore_errors=True)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- objects ---------------------------------------------------------------------

    def _have(self, sha: str, data: bytes) -> bool:
        """Whether a good copy of ``data`` is in the store already."""
        ref = self._known_objects().get(sha)
        if ref is None:
            return False
        if sha in self._verified or ref.pack == self._pack.pack:
            return True
        return self._verify(ref)

    def _verify(self, ref: BlobRef) -> bool:
        try:
            self._reader().get(ref)
        except (BlobMissing, BlobCorrupt):
            return False  # a damaged copy: write ours
        self._verified.add(ref.sha)
        return True

    def _write(self, sha: str, data: bytes, base: Base | None) -> None:
        ref = self._pack.put(sha, data, None if base is None else (base[0], base[1]))
        self._known_objects().add(ref)
        self._depth[sha] = 0 if base is None else base[2] + 1
        self._verified.add(sha)

    def _base_for(self, chain: str | None, near: str | None, size: int) -> Base | None:
        if chain is None or not MIN_DELTA_SIZE <= size <= MAX_DELTA_BASE:
            return None
        for base in (self._earlier(chain), self._recent_base(near), self._bases.get(chain)):
            if base is not None and base[2] < MAX_DEPTH - 1:
                return base
        return None

    def _remember(self, sha: str, data: bytes) -> None:
        if len(data) <= MAX_DELTA_BASE:
            self._recent[sha] = data
            while len(self._recent) > RECENT:
                del self._recent[next(iter(self._recent))]

    def _recent_base(self, sha: str | None) -> Base | None:
        data = None if sha is None else self._recent.get(sha)
        return None if sha is None or data is None else (sha, data, self._depth_of(sha))

    def _advance(self, chain: str, sha: str, data: bytes) -> None:
        self._counts[chain] = self._counts.get(chain, 0) + 1
        if len(data) <= MAX_DELTA_BASE:
            self._bases[chain] = (sha, data, self._depth_of(sha))

    def _earlier(self, chain: str) -> Base | None:
        """The same blob of the previous recording, if it is in the store and readable."""
        sha = self._reference().get((chain, self._counts.get(chain, 0)))
        ref = None if sha is None else self._known_objects().get(sha)
        if ref is None or ref.raw_size > MAX_DELTA_BASE:
            return None
        try:
            data = self._reader().get(ref)
        except (BlobMissing, BlobCorrupt):
            return None
        return ref.sha, data, self._depth_of(ref.sha)

    def _reference(self) -> dict[tuple[str, int], str]:
        if self._earlier_blobs is None:
            known, alike = self._known_objects(), self._alike
            candidates = None if alike is None else lambda _: alike
            self._earlier_blobs = earlier_blobs(self.home, self.start, known.get, candidates)
        return self._earlier_blobs

    def _reader(self) -> BlobReader:
        if self._blob_reader is None:
            self._blob_reader = BlobReader(self.home.root, self._known_objects().get)
        return self._blob_reader

    def _known_objects(self) -> KnownObjects:
        """Every object in the store, by sha, found once, on first use: in a home of many
        packs from the index (one query, which also names the sessions that may be earlier
        recordings of this job; objects of recordings not folded yet are missed, and at
        worst stored twice), else by scanning the packs."""
        if self._known is None:
            self._known = self._indexed_objects()
            if self._known is None:
                refs: dict[str, BlobRef] = {}
                with contextlib.suppress(OSError):
                    for ref in iter_objects(self.home.root):
                        refs.setdefault(ref.sha, ref)
                self._known = KnownObjects(refs=refs)
        return self._known

    def _indexed_objects(self) -> KnownObjects | None:
        if not self.home.index_path.exists() or _packs(self.home) <= SCAN_PACKS_MAX:
            return None
        from rewind.store.index import Store  # DuckDB: only for a home of many packs

        store = Store(self.home, lock_timeout=INDEX_WAIT, warn=lambda _: None)
        try:
            rows, self._alike = store.for_recording(self.start)
        except StoreError:
            return None  # busy or damaged: scan instead
        return KnownObjects(rows=rows)

    def _depth_of(self, sha: str) -> int:
        """How many bases decoding ``sha`` goes through (remembered)."""
        if sha not in self._depth:
            self._depth[sha] = chain_depth(sha, self._known_objects().get)
        return self._depth[sha]

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError(f"session {self.session_id} is already closed")

    def _fold(self) -> None:
        from rewind.store.index import Store  # the index is opened once, at the end

        try:
            Store(self.home, lock_timeout=self.fold_timeout).fold()
        except StoreError:
            pass  # the journal stays; the next reader folds it


class KnownObjects:
    """The store's objects by sha. Rows read from the index become references only when
    asked for: building one for each object of a big home cost more than the query."""

    def __init__(
        self, rows: dict[str, tuple[Any, ...]] | None = None, refs: dict[str, BlobRef] | None = None
    ) -> None:
        self._rows = rows or {}  # BlobRef's fields, in order
        self._refs = refs or {}

    def get(self, sha: str) -> BlobRef | None:
        ref = self._refs.get(sha)
        if ref is None and (row := self._rows.get(sha)) is not None:
            ref = self._refs[sha] = BlobRef(*row)
        return ref

    def add(self, ref: BlobRef) -> None:
        """``ref`` from now on (a copy this session wrote wins over any other)."""
        self._refs[ref.sha] = ref


def _packs(home: Home) -> int:
    """About how many packs a scan would read: the entries of ``objects/``, counted
    (``list_packs`` globs, sorts and names them: 40 ms against 2 ms at 4,000 packs)."""
    try:
        return sum(1 for _ in os.scandir(home.objects_dir))
    except OSError:
        return 0


def _shared_lock(home: Home) -> int:
    """A shared lock on ``gc.lock``, held while recording (``rewind gc`` waits for it)."""
    fd = os.open(home.gc_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


@contextlib.contextmanager
def _io_errors(home: Home) -> Iterator[None]:
    """An ``OSError`` (disk full, no permission) as a ``StoreError`` naming the file."""
    try:
        yield
    except OSError as e:
        where = e.filename or home.root
        raise StoreError(f"cannot write to the store at {where}: {e.strerror}") from None

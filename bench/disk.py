"""``make bench`` (disk part): what a recorded session costs on disk, and reading it back.

1. A generated 50-step growing-context session (bench/growing_agent.py) recorded with the
   real CLI against the fake provider: disk bytes of everything the session keeps under
   the home (object packs and its sealed record; not the index, not the CA) per raw body
   byte, next to one long zstd stream of all the bodies (the practical floor); and the
   time to read back every body of the session, every read verified.
2. The same session recorded four times in one home (the fake answers with fresh random
   ids each time, as a real provider does): disk of four / disk of one; and again with
   small bodies (4 words a message), where per-session records weigh most.

Prints a summary and writes bench/results/disk.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

from rewind.store.fold import object_refs
from rewind.store.home import Home
from rewind.store.index import Store, blob_uses, open_index, read_blobs
from rewind.testing.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
REWIND = str(Path(sys.executable).parent / "rewind")
AGENT = [sys.executable, str(ROOT / "bench" / "growing_agent.py")]


def record(home: Path, fake: FakeProvider, name: str, *extra: str) -> None:
    env = {**os.environ, "REWIND_HOME": str(home), "OPENAI_BASE_URL": f"{fake.url}/v1",
           "OPENAI_API_KEY": "bench"}
    done = subprocess.run([REWIND, "record", "--name", name, "--", *AGENT, *extra], env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)


def kept_bytes(home: Path) -> tuple[int, int]:
    """(file bytes, allocated bytes) of packs and session records."""
    files = [*home.glob("objects/*.pack"), *home.glob("sessions/*.rws"), *home.glob("sessions/*/*")]
    stats = [p.stat() for p in files if p.is_file()]
    return sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


def raw_bodies(home: Path, name: str) -> list[bytes]:
    info, steps, blobs = Store(Home(home)).load(name)
    return [blobs[s.request_sha] for s in steps] + [blobs[s.response_sha] for s in steps if s.response_sha]


def read_back_seconds(home: Path, name: str) -> dict[str, float]:
    """Whole ``Store.load`` (index open included) and the body reads alone, best of 5."""
    store, whole, bodies = Store(Home(home)), [], []
    for _ in range(5):
        start = time.perf_counter()
        store.load(name)
        whole.append(time.perf_counter() - start)
        info = store.session(name)
        uses = blob_uses(info, store.steps(info.id))
        with open_index(Home(home)) as conn:
            refs = object_refs(conn, list(uses))
        start = time.perf_counter()
        read_blobs(home, uses, refs)
        bodies.append(time.perf_counter() - start)
    return {"load_session_s": min(whole), "read_all_bodies_s": min(bodies)}


def growing(fake: FakeProvider) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="rewind-disk-"))
    record(home, fake, "growing")
    bodies = raw_bodies(home, "growing")
    raw = sum(len(b) for b in bodies)
    size, allocated = kept_bytes(home)
    floor = len(zstandard.ZstdCompressor(level=3).compress(b"".join(bodies)))
    return {"steps": len(bodies) // 2, "raw_body_bytes": raw, "disk_bytes": size,
            "disk_allocated_bytes": allocated, "disk_per_raw_byte": size / raw,
            "allocated_per_raw_byte": allocated / raw, "one_zstd_stream_per_raw_byte": floor / raw,
            **read_back_seconds(home, "growing")}


def four_recordings(fake: FakeProvider, *extra: str) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="rewind-disk4-"))
    record(home, fake, "nightly", *extra)
    one, one_allocated = kept_bytes(home)
    for _ in range(3):
        record(home, fake, "nightly", *extra)
    four, four_allocated = kept_bytes(home)
    return {"disk_one": one, "disk_four": four, "four_over_one": four / one,
            "allocated_four_over_one": four_allocated / one_allocated}


def main() -> None:
    with FakeProvider() as fake:
        results = {
            "growing_session": growing(fake),
            "four_recordings": four_recordings(fake),
            "four_recordings_small_bodies": four_recordings(fake, "--words", "4"),
        }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "disk.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

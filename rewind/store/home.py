"""Where the store lives on disk: one directory, the "home", and the paths inside it.

The home is chosen by ``--home``, else ``$REWIND_HOME``, else ``~/.rewind``. Nothing is
created here: writers create the directories they need (mode 0700), when they first write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rewind.errors import ConfigError, StoreError

HOME_ENV = "REWIND_HOME"
DEFAULT_HOME = "~/.rewind"


@dataclass(frozen=True)
class Home:
    """The store's root directory and the well-known paths under it."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def index_path(self) -> Path:
        return self.root / "index.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.root / "index.lock"

    @property
    def sessions_dir(self) -> Path:
        """Per-session records: ``<sid>/`` while recording, ``<sid>.rws`` once sealed."""
        return self.root / "sessions"

    @property
    def objects_dir(self) -> Path:
        """Shared object packs."""
        return self.root / "objects"

    @property
    def gc_lock_path(self) -> Path:
        """Shared-locked by every recorder, exclusively by ``rewind gc``."""
        return self.root / "gc.lock"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def session_journal(self, session_id: str) -> Path:
        """The journal directory of one session being recorded."""
        return self.sessions_dir / session_id

    def sealed_record(self, session_id: str) -> Path:
        """The sealed record of one finished session."""
        return self.sessions_dir / f"{session_id}.rws"


def session_pack(session_id: str) -> str:
    """A session's own pack, as a path under the home (what ``BlobRef.pack`` holds)."""
    return f"objects/{session_id}.pack"


def resolve_home(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """``--home`` value, else ``$REWIND_HOME``, else ``~/.rewind``; ``~`` is expanded."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get(HOME_ENV) or DEFAULT_HOME
    return Home(Path(chosen).expanduser().absolute())


def ensure_home(home: Home) -> None:
    """Create the home (mode 0700) if needed; a clear error if it cannot be one."""
    root = home.root
    if root.exists() and not root.is_dir():
        raise ConfigError(
            f"the Rewind home {root} is a file, not a directory",
            hint="point REWIND_HOME (or --home) at a directory, or move that file away",
        )
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the Rewind home {root}: {e.strerror}",
                         hint="choose a writable directory with REWIND_HOME or --home") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise StoreError(f"the Rewind home {root} is not writable",
                         hint="fix its permissions, or choose another with REWIND_HOME or --home")


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)

"""Where the store lives on disk: one directory, the "home", and the paths inside it.

The home is chosen by ``--home``, else ``$REWIND_HOME``, else ``~/.rewind``. Nothing is
created here: writers create the directories they need, when they first write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    def journal_dir(self) -> Path:
        return self.root / "journal"

    @property
    def packs_dir(self) -> Path:
        return self.root / "packs"

    def session_journal(self, session_id: str) -> Path:
        """The journal directory of one session."""
        return self.journal_dir / session_id


def resolve_home(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> Home:
    """``--home`` value, else ``$REWIND_HOME``, else ``~/.rewind``; ``~`` is expanded."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get(HOME_ENV) or DEFAULT_HOME
    return Home(Path(chosen).expanduser().absolute())

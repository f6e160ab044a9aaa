"""What every command shares: the store home, and the team store read commands answer
from when ``--remote NAME`` is given."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewind.store.home import Home, resolve_home

if TYPE_CHECKING:
    from rewind.store.index import Store
    from rewind.store.remotes import Remote


@dataclass
class App:
    home: Home
    remote: Remote | None = None  # --remote: list, inspect and stats read the team store
    _remote_store: Store | None = field(default=None, repr=False)

    @classmethod
    def create(cls, home: str | None) -> App:
        return cls(resolve_home(home, os.environ))

    def store(self) -> Store:
        """The local store, or (``--remote``) the team store, read with the same queries."""
        if self.remote is not None:
            return self._team_store(self.remote)
        from rewind.store.index import Store  # DuckDB: only for commands that read the index

        return Store(self.home)

    def use_remote(self, name: str | None) -> Remote:
        """Answer from the remote ``name`` (None: the only one configured) from now on."""
        from rewind.store.remotes import pick_remote

        self.remote = pick_remote(self.home, name)
        return self.remote

    def close(self) -> None:
        if self._remote_store is not None:
            from rewind.store.team import RemoteStore

            assert isinstance(self._remote_store, RemoteStore)
            self._remote_store.close()
            self._remote_store = None

    def _team_store(self, remote: Remote) -> Store:
        if self._remote_store is None:
            from rewind.store.team import RemoteStore

            self._remote_store = RemoteStore(self.home, remote, os.environ)
        return self._remote_store

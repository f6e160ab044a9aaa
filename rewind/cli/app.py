"""What every command shares: the store home and the output console."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewind.store.home import Home, resolve_home

if TYPE_CHECKING:
    from rewind.store.index import Store


@dataclass
class App:
    home: Home

    @classmethod
    def create(cls, home: str | None) -> App:
        return cls(resolve_home(home, os.environ))

    def store(self) -> Store:
        from rewind.store.index import Store  # DuckDB: only for commands that read the index

        return Store(self.home)

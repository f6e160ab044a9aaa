"""What every command shares: the store home and the output console."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rewind.store.home import Home, resolve_home
from rewind.store.index import Store


@dataclass
class App:
    home: Home

    @classmethod
    def create(cls, home: str | None) -> App:
        return cls(resolve_home(home, os.environ))

    def store(self) -> Store:
        return Store(self.home)

"""The public API is pinned: a name leaving or joining ``__all__`` is a deliberate change."""

from __future__ import annotations

import rewind
import rewind.cli


def test_package_exports() -> None:
    assert rewind.__all__ == ["RewindError", "__version__"]
    for name in rewind.__all__:
        assert hasattr(rewind, name)


def test_cli_exports() -> None:
    assert rewind.cli.__all__ == ["main", "cli"]

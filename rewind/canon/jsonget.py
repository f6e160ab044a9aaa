"""Reading decoded JSON of unknown shape without raising.

Recorded bodies are untrusted: a field may be missing or of any type. Each helper gives
the value when it has the expected type, else an empty one, so readers never raise.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_dict", "as_text", "dicts", "nonempty_str"]


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects in ``value`` if it is a list, else ``[]``."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def nonempty_str(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def as_text(value: Any) -> str:
    """``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""

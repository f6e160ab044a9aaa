"""Session ids: short, random, lower-case hex, chosen by whoever starts a recording."""

from __future__ import annotations

import secrets

ID_BYTES = 6


def new_session_id() -> str:
    """A fresh session id: 12 lower-case hex characters."""
    return secrets.token_hex(ID_BYTES)

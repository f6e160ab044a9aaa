"""The one exception tree of Rewind.

Every error a user can cause or meet derives from ``RewindError``; the CLI turns
these (and only these) into a one-line message and an exit code.

    RewindError
     ├── ConfigError            bad option value: route, pace, redaction pattern, home
     ├── CaptureError           the recording proxy could not start or run
     ├── CommandNotFound        the agent command does not exist (exit 127)
     ├── StoreError             anything about the on-disk store
     │    ├── StoreCorrupt          index or pack unreadable
     │    ├── StoreBusy             another process held the index too long
     │    ├── SessionNotFound       no session matches a reference
     │    ├── AmbiguousSession      a prefix matches several sessions
     │    ├── BlobMissing           a referenced blob is absent
     │    ├── BlobCorrupt           a blob failed its sha256 check
     │    └── FormatVersionError    data written by a newer / unknown format version
     ├── CassetteError          a cassette file is damaged, tampered with, unsigned or
     │                          signed by another key, or would carry a secret
     ├── RemoteError            a team store cannot be reached, refuses the credentials,
     │                          or holds a body that fails its hash
     └── ReplayError            replay could not be set up or run
"""

from __future__ import annotations


class RewindError(Exception):
    """Base of every error Rewind reports to a user."""

    exit_code = 1
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(RewindError):
    """An option or configuration value is invalid."""

    exit_code = 2


class CaptureError(RewindError):
    """The recording proxy could not start or failed while running."""


class CommandNotFound(RewindError):
    """The command to run does not exist or is not executable."""

    exit_code = 127


class StoreError(RewindError):
    """Something about the on-disk store is wrong."""


class StoreCorrupt(StoreError):
    """The index or a pack file cannot be read."""


class StoreBusy(StoreError):
    """The index stayed locked by another process for too long."""


class SessionNotFound(StoreError):
    """No session matches the given reference."""


class AmbiguousSession(StoreError):
    """A session id prefix matches more than one session."""


class BlobMissing(StoreError):
    """A blob referenced by the index is not in the store."""


class BlobCorrupt(StoreError):
    """A blob's bytes do not hash to its address."""


class FormatVersionError(StoreError):
    """Data was written under a format version this Rewind cannot read."""


class ReplayError(RewindError):
    """Replay could not be set up or run."""


class RemoteError(RewindError):
    """A team store (``rewind push``/``pull``, ``--remote``) cannot be used as asked."""


class CassetteError(RewindError):
    """A cassette (``.rw`` file) cannot be read, verified, trusted or written."""

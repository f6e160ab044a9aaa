"""Rewind: a time-travel debugger for AI agents at the HTTP layer.

Data flows left to right through the sub-packages:
``capture`` (mitmproxy flow -> Exchange) -> ``canon`` (redaction, canonical JSON,
fingerprint) -> ``store`` (blobs, journal, DuckDB index) -> ``replay`` (matching,
playback) -> ``analysis`` -> ``cli``.
"""

from rewind.errors import RewindError

__version__ = "0.1.0"

__all__ = ["RewindError", "__version__"]

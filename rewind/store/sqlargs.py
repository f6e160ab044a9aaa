"""Many values as one DuckDB query parameter.

DuckDB's Python client (seen with 1.5.6) tries ``import pandas`` for every element of a
list parameter; without pandas each try searches ``sys.path`` again, so a list of 20,000
blob hashes cost seconds (the fold at the end of a long recording, diff, rm). A list is
passed instead as one comma-joined string and split in SQL. The values here are hex
hashes, session ids and step numbers: none contains a comma.
"""

from __future__ import annotations

from collections.abc import Iterable

ANY_TEXT = "ANY(string_split(?, ','))"
ANY_INTEGER = "ANY(CAST(string_split(?, ',') AS BIGINT[]))"


def joined(values: Iterable[str | int]) -> str:
    """The parameter for ``ANY_TEXT`` or ``ANY_INTEGER`` (callers skip empty lists)."""
    text = [str(v) for v in values]
    if any("," in v for v in text):
        raise ValueError("a value passed as a list contains a comma")
    return ",".join(text)

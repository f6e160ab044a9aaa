"""Core: the plain records every stage shares, below all of them.

``exchange`` (``Exchange``, ``Chunk``, ``Headers``) is what one HTTP call is as data;
``endpoints`` is the table of LLM providers' base-URL variables and public endpoints.
Nothing here imports mitmproxy, DuckDB or any stage.
"""

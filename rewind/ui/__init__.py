"""``rewind ui``: the local web viewer (a read-only server and its static page)."""

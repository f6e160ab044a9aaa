"""``python -m rewind``: the ``rewind`` command (``rewind mutate`` runs its runs this way)."""

from rewind.cli import main

main()

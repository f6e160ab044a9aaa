"""Load Rewind's replay engine into plain mitmdump:

    mitmdump -s addons/replay.py --set rewind_session=NAME_OR_ID

Options: ``rewind_home``, ``rewind_pace`` (fast | original | 2x), ``rewind_on_miss``
(error | live), ``rewind_reuse``. The addon sets ``connection_strategy=lazy`` and
``upstream_cert=false``, so hosts need not resolve; in strict mode no upstream connection
is ever made. Load one of the two scripts, not both (``rewind_on_miss=live`` lets misses
go upstream unrecorded; ``rewind replay --on-miss live`` records them).
"""

from rewind.cli.mitmdump import MitmdumpReplay

addons = [MitmdumpReplay()]

"""Load Rewind's replay engine into plain mitmdump:

    mitmdump -s addons/replay.py --set rewind_session=NAME_OR_ID

Options: ``rewind_home``, ``rewind_pace`` (fast | original | 2x), ``rewind_on_miss``
(error | live), ``rewind_reuse``. Use ``--set connection_strategy=lazy`` so hosts need
not resolve; in strict mode no upstream connection is ever made.
"""

from rewind.cli.mitmdump import MitmdumpReplay

addons = [MitmdumpReplay()]

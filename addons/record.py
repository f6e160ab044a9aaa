"""Load Rewind's recorder into plain mitmdump: ``mitmdump -s addons/record.py``.

Options: ``--set rewind_home=DIR`` (default $REWIND_HOME or ~/.rewind),
``--set rewind_name=NAME``, ``--set rewind_route=HOST=URL`` (repeatable).
The session is saved when mitmdump exits.
"""

from rewind.cli.mitmdump import MitmdumpRecorder

addons = [MitmdumpRecorder()]

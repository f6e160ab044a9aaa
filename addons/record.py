"""Load Rewind's recorder into plain mitmdump: ``mitmdump -s addons/record.py``.

Options: ``--set rewind_home=DIR`` (default $REWIND_HOME or ~/.rewind),
``--set rewind_name=NAME``, ``--set rewind_route=HOST=URL`` (repeatable).
``--set rewind_redact=REGEX`` (repeatable). The addon sets ``connection_strategy=lazy``
and ``upstream_cert=false``, so a routed host need not resolve, HTTPS included. The
session is saved when mitmdump exits; to replay it, load ``addons/replay.py`` instead.
"""

from rewind.cli.mitmdump import MitmdumpRecorder

addons = [MitmdumpRecorder()]

"""Import only the mitmproxy addons Rewind runs.

``mitmproxy/addons/__init__.py`` imports every default addon (about 0.45 s here, a third
of ``rewind record -- true``). When nothing has imported that package yet, register it
as a bare namespace over the same directory so ``from mitmproxy.addons import
proxyserver`` loads just that module. When mitmdump has loaded the real package first
(``mitmdump -s addons/record.py``), nothing changes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

ADDONS = "mitmproxy.addons"


def import_lean_addons() -> None:
    if ADDONS in sys.modules:
        return
    spec = importlib.util.find_spec("mitmproxy")
    if spec is None or spec.origin is None:
        return
    package = types.ModuleType(ADDONS)
    package.__path__ = [os.path.join(os.path.dirname(spec.origin), "addons")]
    package.__package__ = ADDONS
    sys.modules[ADDONS] = package

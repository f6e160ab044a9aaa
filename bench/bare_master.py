"""The floor of ``bench/run.py``'s latency rows: Rewind's embedded mitmproxy master with no
addon of Rewind's at all (nothing recorded), in a process of its own as ``rewind record``
runs it. Prints the regular proxy's port, then serves until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from rewind.capture.master import ProxySpec, ProxyThread


def main() -> None:
    proxy = ProxyThread(ProxySpec(Path(tempfile.mkdtemp(prefix="bench-bare-")), (), ()))
    print(proxy.start().proxy_port, flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    proxy.stop()


if __name__ == "__main__":
    main()

"""A running playback server, for the tests of the addons and the server itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rewind.replay.playback import PlaybackThread


@pytest.fixture
def playback() -> Iterator[PlaybackThread]:
    thread = PlaybackThread()
    thread.start()
    yield thread
    thread.stop()

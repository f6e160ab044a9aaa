"""An agent test against a committed cassette, as CI runs it: offline, with no API key.

The real openai SDK talks to "api.openai.com"; the pytest-rewind plugin (plugins/
pytest-rewind) replays ``cassettes/openai_chat.rw`` to it. To record it anew against the
real API: ``OPENAI_API_KEY=... pytest examples --rewind-mode all``.
"""

from __future__ import annotations

import openai
import pytest


@pytest.mark.rewind(cassette="cassettes/openai_chat.rw")
def test_the_agent_answers_from_the_cassette() -> None:
    client = openai.OpenAI()
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello to the cassette"}]
    )
    assert reply.choices[0].message.content == "This is a fake answer to: Say hello to the cassette"
    streamed = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Now stream it"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == "This is a fake answer to: Now stream it"

"""A LangGraph ReAct agent on langchain-openai, for Rewind's end-to-end tests.

``ChatOpenAI(model="gpt-4o-mini", streaming=True)`` bound to one tool, ``get_weather``,
in ``langgraph.prebuilt.create_react_agent``; it asks "What's the weather in Paris?" and
prints each tool call, the final answer and the token usage LangChain saw. OPENAI_API_KEY
and OPENAI_BASE_URL come from the environment, as a user's agent reads them.
"""

from __future__ import annotations

import json
import warnings

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

warnings.filterwarnings("ignore")  # create_react_agent's deprecation notice, on stderr

from langgraph.prebuilt import create_react_agent  # noqa: E402

QUESTION = "What's the weather in Paris?"


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"{city}: sunny, 21 C"


def main() -> None:
    model = ChatOpenAI(model="gpt-4o-mini", streaming=True, max_retries=0)
    agent = create_react_agent(model, [get_weather])
    result = agent.invoke({"messages": [("user", QUESTION)]})
    for message in result["messages"]:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                print(f"tool call: {call['name']} {json.dumps(call['args'])}", flush=True)
            usage = message.usage_metadata
            print(f"usage: {usage['total_tokens'] if usage else None}", flush=True)
    print(f"final: {result['messages'][-1].content}", flush=True)


if __name__ == "__main__":
    main()

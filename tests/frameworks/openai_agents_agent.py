"""An openai-agents agent with one function tool, on default settings (tracing on).

Asks "What's the weather in Paris?"; the model (Responses API, the SDK's default) calls
``get_weather`` and answers from its result. The SDK reads OPENAI_API_KEY and
OPENAI_BASE_URL itself and exports its trace to https://api.openai.com/v1/traces/ingest.
The trace is flushed before the process exits so that the upload is part of the run
(the SDK would also flush from its atexit hook).
"""

from agents import Agent, Runner, function_tool
from agents.tracing import get_trace_provider


@function_tool
def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"{city}: sunny, 21 C"


def main() -> None:
    agent = Agent(name="weather", instructions="Answer with the tool's result.", tools=[get_weather])
    result = Runner.run_sync(agent, "What's the weather in Paris?")
    print("final:", result.final_output)
    get_trace_provider().force_flush()


if __name__ == "__main__":
    main()

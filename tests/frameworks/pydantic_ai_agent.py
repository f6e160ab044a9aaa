"""A pydantic-ai agent with one function tool over OpenAI chat completions.

Asks "What's the weather in Paris?"; the model calls ``get_weather`` and answers from its
result. The OpenAI client reads OPENAI_API_KEY and OPENAI_BASE_URL from the environment.
"""

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel


def get_weather(city: str) -> str:
    """Return the current weather in a city."""
    return f"{city}: sunny, 21 C"


def main() -> None:
    model = OpenAIChatModel("gpt-4o")
    agent = Agent(model, instructions="Answer with the tool's result.", tools=[get_weather])
    result = agent.run_sync("What's the weather in Paris?")
    print("final:", result.output)


if __name__ == "__main__":
    main()

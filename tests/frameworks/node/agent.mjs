// A Vercel AI SDK agent (Node 20) with one tool, for Rewind's end-to-end tests.
//
// Asks "What's the weather in Paris?"; the model calls get_weather and answers from its
// result, in up to three steps. The provider is the SDK's default `openai`, which reads
// OPENAI_API_KEY and OPENAI_BASE_URL itself (Node's fetch ignores HTTPS_PROXY, so a base
// URL is how Rewind sees these calls). Options: --api responses|chat (the default model
// `openai(id)` speaks the Responses API; `openai.chat(id)` chat completions) and
// --call stream|generate (streamText or generateText).
import { openai } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const MODEL = "gpt-4o-mini";
const MODELS = { responses: openai, chat: openai.chat };

const getWeather = tool({
  description: "Return the current weather in a city.",
  inputSchema: z.object({ city: z.string().describe("The city name") }),
  execute: async ({ city }) => `${city}: sunny, 21 C`,
});

function parseArgs(argv) {
  const args = { api: "responses", call: "stream" };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--api" && value in MODELS) args.api = value;
    else if (flag === "--call" && ["stream", "generate"].includes(value)) args.call = value;
    else throw new Error(`unknown option ${flag} ${value}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const request = {
    model: MODELS[args.api](MODEL),
    system: "Answer with the tool's result.",
    prompt: "What's the weather in Paris?",
    tools: { get_weather: getWeather },
    stopWhen: stepCountIs(3),
  };
  const result = args.call === "stream" ? streamText(request) : await generateText(request);
  const steps = await result.steps;
  console.log(`steps: ${steps.map((step) => step.finishReason).join(", ")}`);
  console.log(`final: ${await result.text}`);
}

await main();

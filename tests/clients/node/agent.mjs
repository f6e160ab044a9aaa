// An agent on the official openai Node SDK (Node 20), for Rewind's end-to-end tests.
//
// Reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment, as the SDK does; Node's
// fetch ignores HTTPS_PROXY, so a base URL is how Rewind sees these calls. Prints the same
// lines as tests/clients/py_openai_agent.py. Options: --suffix TEXT, --max-retries N,
// --sections plain,stream,tool,stream_tool.
import OpenAI from "openai";

const MODEL = "gpt-4o-mini";
const PLAIN_PROMPT = "Say hello to Rewind.";
const STREAM_PROMPT = "Count from one to five.";
const WEATHER_PROMPT = "What's the weather in Paris?";
const TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Get the current weather for a city.",
      parameters: {
        type: "object",
        properties: { city: { type: "string", description: "The city name" } },
        required: ["city"],
      },
    },
  },
];

function parseArgs(argv) {
  const args = { suffix: "", maxRetries: 0, sections: "plain,stream,tool,stream_tool" };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--suffix") args.suffix = value;
    else if (flag === "--max-retries") args.maxRetries = Number(value);
    else if (flag === "--sections") args.sections = value;
    else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

// JSON like Python's json.dumps(value, sort_keys=True), so outputs compare across agents.
function show(value) {
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${show(value[k])}`).join(", ")}}`;
  }
  return JSON.stringify(value);
}

const getWeather = (city) => ({ city, forecast: "sunny", temp_c: 21 });
const user = (text) => ({ role: "user", content: text });
const showUsage = (label, u) =>
  console.log(`${label} usage: input=${u.prompt_tokens} output=${u.completion_tokens} total=${u.total_tokens}`);

async function plain(client, prompt) {
  const reply = await client.chat.completions.create({ model: MODEL, messages: [user(prompt(PLAIN_PROMPT))] });
  console.log(`plain: ${reply.choices[0].message.content}`);
  showUsage("plain", reply.usage);
}

async function stream(client, prompt) {
  const chunks = await client.chat.completions.create({
    model: MODEL,
    messages: [user(prompt(STREAM_PROMPT))],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  for await (const chunk of chunks) {
    for (const choice of chunk.choices) text += choice.delta.content ?? "";
    usage = chunk.usage ?? usage;
  }
  console.log(`stream: ${text}`);
  showUsage("stream", usage);
}

async function toolRoundTrip(client, prompt) {
  const messages = [user(prompt(WEATHER_PROMPT))];
  const first = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  const call = first.choices[0].message.tool_calls[0];
  const args = JSON.parse(call.function.arguments);
  console.log(`tool call: ${call.function.name} ${show(args)}`);
  const result = getWeather(args.city);
  console.log(`tool result: ${show(result)}`);
  messages.push(first.choices[0].message);
  messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify(result) });
  const final = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
  console.log(`final: ${final.choices[0].message.content}`);
  showUsage("final", final.usage);
}

async function streamTool(client, prompt) {
  const chunks = await client.chat.completions.create({
    model: MODEL,
    messages: [user(prompt(WEATHER_PROMPT))],
    tools: TOOLS,
    stream: true,
  });
  let name = "";
  let args = "";
  for await (const chunk of chunks) {
    for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
      name += call.function?.name ?? "";
      args += call.function?.arguments ?? "";
    }
  }
  console.log(`stream tool call: ${name} ${show(JSON.parse(args))}`);
}

function describe(error) {
  if (error instanceof OpenAI.APIError && error.status) return `${error.status} ${error.constructor.name}`;
  if (error instanceof OpenAI.APIError) return "connection";
  throw error;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const client = new OpenAI({ maxRetries: args.maxRetries, timeout: 30_000 });
  const prompt = (text) => `${text} ${args.suffix}`.trim();
  const sections = { plain, stream, tool: toolRoundTrip, stream_tool: streamTool };
  let failed = false;
  for (const [label, section] of Object.entries(sections)) {
    if (!args.sections.split(",").includes(label)) continue;
    try {
      await section(client, prompt);
    } catch (error) {
      console.log(`${label} error: ${describe(error)}`);
      failed = true;
    }
  }
  process.exitCode = failed ? 1 : 0;
}

await main();

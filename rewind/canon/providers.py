"""What Rewind knows about LLM providers' wire formats.

STUB — interface contract (to be implemented):

class Provider(str, Enum): OPENAI = "openai"; ANTHROPIC = "anthropic"; GEMINI = "gemini"
PUBLIC_BASE_URLS: dict[Provider, str]   # https://api.openai.com/v1, https://api.anthropic.com,
                                        # https://generativelanguage.googleapis.com
BASE_URL_ENV: dict[Provider, str]       # OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL
def detect_provider(host: str, path: str, listener: str | None) -> Provider | None
def is_llm_call(provider: Provider | None, path: str) -> bool   # chat/completions, responses,
                                        # messages, :generateContent, :streamGenerateContent, ...
@dataclass(frozen=True)
class Usage: input_tokens: int | None = None; output_tokens: int | None = None;
             cache_read_tokens: int | None = None; cache_write_tokens: int | None = None
def extract_model(provider, path: str, request_body: bytes, response_body: bytes) -> str | None
def extract_usage(provider, response_body: bytes, content_type: str | None) -> Usage
    # JSON bodies and SSE streams: OpenAI include_usage chunk, Anthropic message_start +
    # message_delta, Gemini usageMetadata (last one wins)
def parse_sse(body: bytes) -> list[SseEvent]    # SseEvent(event: str | None, data: str)
"""

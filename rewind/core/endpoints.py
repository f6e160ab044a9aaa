"""The LLM providers Rewind knows by endpoint: the one table capture and canon derive from."""

from __future__ import annotations

# provider -> (base-URL variable its SDKs read, public base URL)
PROVIDER_ENDPOINTS: dict[str, tuple[str, str]] = {
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "gemini": ("GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
}

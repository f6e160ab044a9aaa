"""Redaction of secrets and user-chosen patterns, applied before hashing and writing.

STUB — interface contract (to be implemented):

REDACTED = "[REDACTED]"
SECRET_HEADERS: frozenset[str]  # authorization, proxy-authorization, x-api-key, api-key,
                                # x-goog-api-key, cookie, set-cookie
SECRET_QUERY_PARAMS: frozenset[str]  # key, api_key, access_token

@dataclass(frozen=True)
class RedactionPolicy:
    body_patterns: tuple[re.Pattern[bytes], ...] = ()   # user regexes over bodies
    literals: tuple[bytes, ...] = ()                    # exact secret values to scrub anywhere
    @classmethod
    def build(cls, patterns: Iterable[str] = (), environ: Mapping[str, str] | None = None)
        -> RedactionPolicy   # ConfigError on a bad regex; takes secret-looking env values
                             # (names containing KEY, TOKEN, SECRET, PASSWORD) as literals

def redact_headers(headers: Headers) -> Headers
def redact_url(url: str) -> str            # secret query params -> [REDACTED]
def redact_bytes(data: bytes, policy: RedactionPolicy, extra_literals=()) -> bytes
def redact_exchange(ex: Exchange, policy: RedactionPolicy) -> Exchange
    # new Exchange: headers, url, both bodies and every chunk redacted; the secret
    # values found in this request's headers/query are also scrubbed from all bodies.
"""

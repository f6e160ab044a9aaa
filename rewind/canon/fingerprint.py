"""Fingerprint v1: a pure, versioned function of a redacted request.

STUB — interface contract (to be implemented); documented in docs/fingerprint.md:

FINGERPRINT_VERSION = 1
def canonical_request(method: str, url: str, headers: Headers, body: bytes,
                      provider: Provider | None) -> dict[str, Any]
    # {"v": 1, "method", "host", "path", "query": [[k, v], ...] sorted, secrets dropped,
    #  "content_type", "body": normalised JSON value | {"sha256": hex} when not JSON}
def fingerprint_of(canonical: dict[str, Any]) -> str      # "v1:" + sha256(RFC 8785 bytes)
def fingerprint(method, url, headers, body, provider) -> str
def parse_version(fp: str) -> int
"""

"""How an agent process is wired to the proxy: listeners, upstreams and environment.

Each LLM provider gets a reverse-mode listener on loopback whose upstream is the
user's own base-URL variable if set, else the provider's public endpoint; the agent
gets that provider's base-URL variable pointing at the listener (Node's fetch ignores
proxy variables, so this is how Node agents are reached). Everything else goes through
the regular proxy named by ``HTTPS_PROXY``/``HTTP_PROXY``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from rewind.capture.local import is_local, local_port, point_at_listeners
from rewind.core.endpoints import PROVIDER_ENDPOINTS
from rewind.errors import ConfigError

LOOPBACK = "127.0.0.1"
NO_PROXY = "127.0.0.1,localhost,::1"
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")


@dataclass(frozen=True)
class Listener:
    """A reverse-mode listener for one provider."""

    provider: str
    upstream: str  # base URL the listener forwards to, path included

    @property
    def mode_spec(self) -> str:
        """The mitmproxy mode spec, without port; the path stays on the client's side, and
        user-info (credentials) never goes into it."""
        parts = urlsplit(self.upstream)
        return f"reverse:{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    @property
    def authorization(self) -> str | None:
        """``Basic …`` for an upstream URL with user-info, which the mode spec leaves out."""
        return basic_credentials(urlsplit(self.upstream))

    def client_base_url(self, port: int) -> str:
        """The base URL an agent uses to reach this listener on ``port``."""
        return f"http://{LOOPBACK}:{port}{urlsplit(self.upstream).path}"


def basic_credentials(parts: SplitResult) -> str | None:
    """``Basic base64(user:password)`` for a URL with user-info, else None."""
    if parts.username is None and parts.password is None:
        return None
    userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")


def upstream_auth(listeners: Iterable[Listener]) -> dict[str, str]:
    """Provider -> ``Basic …`` for each listener whose upstream URL has user-info."""
    return {lst.provider: auth for lst in listeners if (auth := lst.authorization) is not None}


def upstreams_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Each provider's upstream: the user's base-URL variable if set, else its public URL."""
    return {
        provider: environ.get(variable) or default
        for provider, (variable, default) in PROVIDER_ENDPOINTS.items()
    }


def listeners_for(upstreams: Mapping[str, str]) -> list[Listener]:
    """One listener per provider, validating each upstream URL."""
    return [Listener(provider, check_url(url, f"{provider} upstream")) for provider, url in upstreams.items()]


def check_url(url: str, what: str) -> str:
    """An absolute http(s) URL, or ConfigError saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be an absolute http(s) URL, got {url!r}")
    return url


@dataclass(frozen=True)
class Wiring:
    """Where a running proxy listens: the regular proxy port and each provider's port."""

    proxy_port: int
    listener_ports: dict[str, int]
    listeners: tuple[Listener, ...]

    def base_urls(self) -> dict[str, str]:
        """Base-URL variable -> listener URL, for every provider."""
        return {
            PROVIDER_ENDPOINTS[lst.provider][0]: lst.client_base_url(self.listener_ports[lst.provider])
            for lst in self.listeners
            if not is_local(lst.provider)
        }

    def local_listeners(self) -> dict[int, int]:
        """Local model server port -> the port of its listener (``--local-port``)."""
        return {
            local_port(lst.provider): self.listener_ports[lst.provider]
            for lst in self.listeners
            if is_local(lst.provider)
        }


class BaseUrls(StrEnum):
    """When the agent gets the providers' base-URL variables (``--base-urls``).

    Setting ``OPENAI_BASE_URL`` changes what some frameworks send: langchain-openai and
    litellm stop asking for streamed usage, openai-agents drops ``prompt_cache_key``. So
    ``auto`` sets a provider's variable only where it is needed: when the user set it
    already (its value becomes the listener's upstream), or when the command runs
    JavaScript (Node's fetch ignores proxy variables). Everything else reaches the
    providers through ``HTTPS_PROXY`` with Rewind's CA, as it would without Rewind."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


# Commands whose HTTP clients ignore HTTPS_PROXY, so base URLs are how they are reached.
JS_RUNTIMES = frozenset({"node", "nodejs", "npx", "npm", "pnpm", "yarn", "tsx", "ts-node", "bun", "deno"})


def agent_env(
    base: Mapping[str, str], wiring: Wiring, bundle: Path,
    command: Sequence[str] = (), policy: BaseUrls = BaseUrls.AUTO,
) -> dict[str, str]:
    """The environment an agent runs with: proxy and CA trust variables, and the base-URL
    variables that ``policy`` calls for. With local model servers (``--local-port``),
    loopback goes through the proxy too and mentions of those ports point at their
    listeners (``capture.local``)."""
    locals_ = wiring.local_listeners()
    env = point_at_listeners(base, locals_) if locals_ else dict(base)
    proxy_url = f"http://{LOOPBACK}:{wiring.proxy_port}"
    env.update({name: proxy_url for name in PROXY_VARIABLES})
    no_proxy = "" if locals_ else NO_PROXY
    env.update({"NO_PROXY": no_proxy, "no_proxy": no_proxy})
    env.update({name: str(bundle) for name in CA_VARIABLES})
    env.update(chosen_base_urls(wiring.base_urls(), base, command, policy))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def chosen_base_urls(
    listeners: Mapping[str, str], base: Mapping[str, str], command: Sequence[str], policy: BaseUrls
) -> dict[str, str]:
    """Base-URL variable -> listener URL, for the variables ``policy`` sets."""
    if policy is BaseUrls.ALWAYS or (policy is BaseUrls.AUTO and runs_javascript(command)):
        return dict(listeners)
    if policy is BaseUrls.NEVER:
        return {}
    return {name: url for name, url in listeners.items() if base.get(name)}


def runs_javascript(command: Sequence[str]) -> bool:
    """Whether ``command`` starts a JavaScript runtime (directly, or a script whose
    ``#!`` line names one)."""
    if not command:
        return False
    if Path(command[0]).name in JS_RUNTIMES:
        return True
    return any(runtime in _shebang(command[0]).split("/")[-1].split() for runtime in JS_RUNTIMES)


def _shebang(path: str) -> str:
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return ""
    return first[2:].decode("utf-8", "replace").strip() if first.startswith(b"#!") else ""


def parse_routes(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``HOST=URL`` pairs into a dict, with a clear error for a malformed one."""
    routes: dict[str, str] = {}
    for spec in specs:
        host, sep, url = spec.partition("=")
        if not sep or not host.strip() or "/" in host:
            example = "api.openai.com=http://127.0.0.1:8000"
            raise ConfigError(f"--route expects HOST=URL (e.g. {example}), got {spec!r}")
        routes[host.strip().lower()] = check_url(url.strip(), f"--route target for {host}")
    return routes

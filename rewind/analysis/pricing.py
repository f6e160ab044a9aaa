"""What recorded LLM calls cost: a dated price table, model matching and the arithmetic.

The table. ``prices.json`` ships with Rewind: USD per 1M tokens, dated (``as_of``) and
naming its sources (the providers' pricing pages). Format 1::

    {"format": 1, "as_of": "2026-08-21", "currency": "USD", "unit": "per 1M tokens",
     "source": ["https://..."], "notes": ["..."],
     "aliases": {"claude-opus-4-0": "claude-opus-4"},
     "models": {"gpt-4o": {"input": 2.5, "output": 10, "cache_read": 1.25,
                           "cache_write": null, "note": "optional"},
                "a-retired-model": null}}

``cache_read`` / ``cache_write`` are ``null`` where the provider publishes no separate
rate: such tokens are then charged at the ``input`` rate. A model whose entry is ``null``
is known and deliberately unpriced. ``load_prices`` lays one override file over the
bundled table, in the same format (only ``models`` is required): the first of the
``override`` argument, ``$REWIND_PRICES``, ``<home>/prices.json``. Its models and aliases
replace or extend the bundled ones (``null`` un-prices one); the result keeps the bundled
``as_of``, appends the file's ``source`` and names the file in ``overrides``. A malformed
file is a ``ConfigError`` naming it and the field at fault.

Matching a model name to a row (``PriceTable.resolve``), lower-cased, first hit wins:

    1. the name itself, or an alias of a row;
    2. without a leading ``models/`` (Gemini's resource form);
    3. without one trailing version suffix: a date (``-2024-08-06``, ``-20250929``), a
       three-digit revision (``-001``), a dated preview (``-preview-05-20``,
       ``-preview-09-2025``) or ``-latest``.

There is no prefix matching: ``gpt-4o-mini-search-preview`` is unpriced rather than
priced as ``gpt-4o-mini`` (or ``gpt-4o``). A snapshot priced differently from its family
has its own row (``gpt-4o-2024-05-13``), which step 1 finds first.

The arithmetic: ``cost = (fresh * input + cache_read_tokens * cache_read + cache_write_tokens
* cache_write + output_tokens * output) / 1M``, where ``fresh`` follows the token semantics
of the wire format (``rewind.canon.providers.Usage``; a gateway speaking OpenAI's format
is read as OpenAI):

    openai     prompt_tokens INCLUDES cached tokens: fresh = input - cache_read - cache_write
    gemini     promptTokenCount INCLUDES cachedContentTokenCount: the same rule
    anthropic  input_tokens EXCLUDES cache reads and writes: fresh = input
    (other)    counts are taken as disjoint, as for anthropic

``cost`` is linear in the four token counts, with no clamping or rounding, so the cost of
per-(model, provider) token sums equals the sum of the per-step costs: views may sum
tokens in SQL and price the totals (``cost_of_totals``). An unknown model is unpriced
(``None``), never 0.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from rewind.canon.providers import Usage
from rewind.errors import ConfigError

__all__ = [
    "OVERRIDE_NAME",
    "PER_TOKENS",
    "PRICES_ENV",
    "Price",
    "PriceTable",
    "bundled_prices",
    "cost",
    "cost_of_totals",
    "load_prices",
    "override_path",
]

PRICES_ENV = "REWIND_PRICES"
OVERRIDE_NAME = "prices.json"  # under the Rewind home
PER_TOKENS = 1_000_000  # prices are per this many tokens
FORMAT = 1
BUNDLED = "rewind/analysis/prices.json"

_VERSION_SUFFIX = re.compile(
    r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|preview-\d{2}-\d{2}|preview-\d{2}-\d{4}|latest)$"
)
_INPUT_INCLUDES_CACHE = frozenset({"openai", "gemini"})
_TOP_KEYS = frozenset({"format", "as_of", "currency", "unit", "source", "notes", "aliases", "models"})
_CONSTANTS: dict[str, object] = {"format": FORMAT, "currency": "USD", "unit": "per 1M tokens"}
_PRICE_KEYS = frozenset({"input", "output", "cache_read", "cache_write", "note"})
_HINT = (
    "an override has the bundled table's format, e.g. "
    '{"models": {"my-model": {"input": 1.0, "output": 2.0, "cache_read": null, "cache_write": null}}}'
    f" (USD per 1M tokens); fix the file, or unset ${PRICES_ENV} / remove <home>/{OVERRIDE_NAME}"
)


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; ``None`` cache rates mean "charged at the input rate"."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name, with their date and sources (and overrides applied)."""

    as_of: str
    source: tuple[str, ...]
    models: Mapping[str, Price | None] = field(hash=False)
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    currency: str = "USD"
    overrides: tuple[str, ...] = ()

    def resolve(self, model: str | None) -> str | None:
        """The row ``model`` is priced by (see the module docstring), or ``None``."""
        for name in _candidates(model):
            if name in self.models:
                return name
            if self.aliases.get(name) in self.models:
                return self.aliases[name]
        return None

    def price(self, model: str | None) -> Price | None:
        """The price of ``model``; ``None`` when unknown or deliberately unpriced."""
        row = self.resolve(model)
        return None if row is None else self.models[row]


def _candidates(model: str | None) -> Iterator[str]:
    name = (model or "").strip().lower()
    if not name:
        return
    yield name
    bare = name.removeprefix("models/")
    if bare != name:
        yield bare
    stem = _VERSION_SUFFIX.sub("", bare)
    if stem != bare:
        yield stem


# --- cost arithmetic ---------------------------------------------------------------


def cost(
    price: Price,
    provider: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None,
    cache_write_tokens: int | None,
) -> float:
    """USD for these token counts (``None`` counts as 0); linear in every count."""
    read, write = cache_read_tokens or 0, cache_write_tokens or 0
    fresh = input_tokens or 0
    if provider in _INPUT_INCLUDES_CACHE:
        fresh -= read + write
    dollars = (
        fresh * price.input
        + read * _or_input(price.cache_read, price)
        + write * _or_input(price.cache_write, price)
        + (output_tokens or 0) * price.output
    )
    return dollars / PER_TOKENS


def _or_input(rate: float | None, price: Price) -> float:
    return price.input if rate is None else rate


def cost_of_totals(table: PriceTable, model: str | None, provider: str | None, totals: Usage) -> float | None:
    """USD for one step's usage or for token sums of one (model, provider); ``None`` if unpriced.

    Because ``cost`` is linear, pricing the sums equals summing the per-step costs."""
    price = table.price(model)
    if price is None:
        return None
    return cost(
        price,
        provider,
        totals.input_tokens,
        totals.output_tokens,
        totals.cache_read_tokens,
        totals.cache_write_tokens,
    )


# --- loading -----------------------------------------------------------------------


def load_prices(
    home_root: Path | None, override: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> PriceTable:
    """The bundled table with the first override found laid over it (module docstring)."""
    table = bundled_prices()
    path = override_path(home_root, override, environ)
    if path is None:
        return table
    return _merge(table, _parse(_read(path), str(path), bundled=False), str(path))


@functools.cache
def bundled_prices() -> PriceTable:
    """The price table that ships with Rewind."""
    text = resources.files("rewind.analysis").joinpath("prices.json").read_text(encoding="utf-8")
    table = _parse(_decode(text, BUNDLED), BUNDLED, bundled=True)
    _check_aliases(table.aliases, table.models, BUNDLED)
    return table


def override_path(
    home_root: Path | None, override: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The explicit override, else ``$REWIND_PRICES``, else ``<home>/prices.json`` if present."""
    environ = os.environ if environ is None else environ
    if override is not None:
        return override
    if environ.get(PRICES_ENV):
        return Path(environ[PRICES_ENV]).expanduser()
    in_home = home_root / OVERRIDE_NAME if home_root is not None else None
    return in_home if in_home is not None and in_home.exists() else None


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"cannot read the price override {path}: {reason}", hint=_HINT) from None
    return _decode(text, str(path))


def _decode(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{origin}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", hint=_HINT
        ) from None


def _merge(base: PriceTable, extra: PriceTable, origin: str) -> PriceTable:
    """``extra``'s models and aliases replace or extend ``base``'s; ``base`` keeps its date."""
    models = MappingProxyType({**base.models, **extra.models})
    aliases = MappingProxyType({**base.aliases, **extra.aliases})
    _check_aliases(aliases, models, origin)
    return PriceTable(
        as_of=base.as_of,
        source=base.source + extra.source,
        models=models,
        aliases=aliases,
        currency=base.currency,
        overrides=base.overrides + extra.overrides,
    )


# --- validation --------------------------------------------------------------------


def _parse(data: Any, origin: str, *, bundled: bool) -> PriceTable:
    """A table from decoded JSON; ``ConfigError`` naming ``origin`` and the bad field."""
    if not isinstance(data, dict):
        _fail(origin, "the file must hold a JSON object", data)
    _check_keys(data, origin, bundled)
    models = _models(data["models"], origin)
    return PriceTable(
        as_of=_as_of(data.get("as_of"), origin),
        source=_sources(data.get("source", []), origin),
        models=models,
        aliases=_aliases(data.get("aliases", {}), origin),
        overrides=() if bundled else (origin,),
    )


def _check_keys(data: dict[str, Any], origin: str, bundled: bool) -> None:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        _fail(origin, f"unknown key {unknown[0]!r} (expected some of {', '.join(sorted(_TOP_KEYS))})")
    required = ("models", "as_of", "source") if bundled else ("models",)
    missing = [key for key in required if key not in data]
    if missing:
        _fail(origin, f"missing {missing[0]!r}")
    for key, expected in _CONSTANTS.items():
        if key in data and data[key] != expected:
            _fail(origin, f"{key} must be {expected!r}", data[key])


def _models(raw: Any, origin: str) -> Mapping[str, Price | None]:
    if not isinstance(raw, dict):
        _fail(origin, "models must be an object of model name -> prices", raw)
    return MappingProxyType(
        {_name(name, origin): _price(entry, f"models[{name!r}]", origin) for name, entry in raw.items()}
    )


def _price(entry: Any, where: str, origin: str) -> Price | None:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        _fail(origin, f"{where} must be an object or null", entry)
    unknown = sorted(set(entry) - _PRICE_KEYS)
    if unknown:
        _fail(
            origin,
            f"{where} has unknown key {unknown[0]!r} (expected input, output, cache_read, cache_write)",
        )
    return Price(
        input=_rate(entry.get("input"), f"{where}.input", origin),
        output=_rate(entry.get("output"), f"{where}.output", origin),
        cache_read=_optional_rate(entry.get("cache_read"), f"{where}.cache_read", origin),
        cache_write=_optional_rate(entry.get("cache_write"), f"{where}.cache_write", origin),
    )


def _rate(value: Any, where: str, origin: str, expected: str = "a non-negative number") -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        _fail(origin, f"{where} must be {expected}", value)
    return float(value)


def _optional_rate(value: Any, where: str, origin: str) -> float | None:
    return None if value is None else _rate(value, where, origin, "a non-negative number or null")


def _name(name: str, origin: str) -> str:
    if not name.strip():
        _fail(origin, "a model name is empty")
    return name.strip().lower()


def _aliases(raw: Any, origin: str) -> Mapping[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip() for v in raw.values()):
        _fail(origin, "aliases must be an object of name -> model name", raw)
    return MappingProxyType({_name(k, origin): v.strip().lower() for k, v in raw.items()})


def _check_aliases(aliases: Mapping[str, str], models: Mapping[str, object], origin: str) -> None:
    dangling = sorted(name for name, target in aliases.items() if target not in models)
    if dangling:
        _fail(origin, f"alias {dangling[0]!r} names {aliases[dangling[0]]!r}, which is not in models")


def _as_of(raw: Any, origin: str) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw).isoformat()
        except ValueError:
            pass
    _fail(origin, "as_of must be a date, YYYY-MM-DD", raw)


def _sources(raw: Any, origin: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        _fail(origin, "source must be a URL or a list of them", raw)
    return tuple(items)


_MISSING = object()


def _fail(origin: str, problem: str, value: Any = _MISSING) -> NoReturn:
    """Raise the ``ConfigError`` for one problem in ``origin``."""
    shown = "" if value is _MISSING else f", not {json.dumps(value)[:60]}"
    raise ConfigError(f"{origin}: {problem}{shown}", hint=_HINT)

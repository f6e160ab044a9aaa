"""Tests of rewind.analysis.pricing: the bundled table, model matching, overrides and cost."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewind.analysis import pricing
from rewind.analysis.pricing import (
    PRICES_ENV,
    Price,
    PriceTable,
    bundled_prices,
    cost,
    cost_of_totals,
    load_prices,
)
from rewind.canon.providers import Provider, Usage, extract_usage
from rewind.errors import ConfigError

OPENAI, ANTHROPIC, GEMINI = Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI
JSON = "application/json"

# The models the table must cover; each priced as the providers publish (USD per 1M tokens).
EXPECTED = {
    "gpt-4o": Price(2.5, 10.0, 1.25, None),
    "gpt-4o-mini": Price(0.15, 0.6, 0.075, None),
    "gpt-4.1": Price(2.0, 8.0, 0.5, None),
    "gpt-4.1-mini": Price(0.4, 1.6, 0.1, None),
    "gpt-4.1-nano": Price(0.1, 0.4, 0.025, None),
    "o1": Price(15.0, 60.0, 7.5, None),
    "o3": Price(2.0, 8.0, 0.5, None),
    "o3-mini": Price(1.1, 4.4, 0.55, None),
    "o4-mini": Price(1.1, 4.4, 0.275, None),
    "gpt-5": Price(1.25, 10.0, 0.125, None),
    "gpt-5-mini": Price(0.25, 2.0, 0.025, None),
    "gpt-5-nano": Price(0.05, 0.4, 0.005, None),
    "claude-opus-4-1": Price(15.0, 75.0, 1.5, 18.75),
    "claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.3, 3.75),
    "claude-sonnet-4": Price(3.0, 15.0, 0.3, 3.75),
    "claude-3-7-sonnet": Price(3.0, 15.0, 0.3, 3.75),
    "claude-3-5-haiku": Price(0.8, 4.0, 0.08, 1.0),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.1, 1.25),
    "gemini-2.5-pro": Price(1.25, 10.0, 0.125, None),
    "gemini-2.5-flash": Price(0.3, 2.5, 0.03, None),
    "gemini-2.5-flash-lite": Price(0.1, 0.4, 0.01, None),
    "gemini-2.0-flash": Price(0.1, 0.4, 0.025, None),
}


@pytest.fixture
def table() -> PriceTable:
    return bundled_prices()


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_public_api() -> None:
    assert sorted(pricing.__all__) == [
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


# --- the bundled table -------------------------------------------------------------------


def test_bundled_table_is_dated_and_names_its_sources(table: PriceTable) -> None:
    assert date.fromisoformat(table.as_of) <= date(2026, 11, 30)
    assert table.currency == "USD"
    assert table.overrides == ()
    assert any("openai.com" in url for url in table.source)
    assert any("claude.com" in url or "anthropic.com" in url for url in table.source)
    assert any("ai.google.dev" in url for url in table.source)
    assert all(url.startswith("https://") for url in table.source)


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_bundled_prices_of_current_models(table: PriceTable, model: str) -> None:
    assert table.price(model) == EXPECTED[model]


def test_every_row_is_sane(table: PriceTable) -> None:
    for name, price in table.models.items():
        if price is None:
            continue
        assert price.output >= price.input > 0, name
        assert price.cache_read is None or price.cache_read < price.input, name
        assert price.cache_write is None or price.cache_write > price.input, name


def test_bundled_file_spells_out_every_rate() -> None:
    raw = json.loads((Path(pricing.__file__).parent / "prices.json").read_text(encoding="utf-8"))
    for name, entry in raw["models"].items():
        assert entry is None or {"input", "output", "cache_read", "cache_write"} <= set(entry), name


def test_table_is_frozen(table: PriceTable) -> None:
    with pytest.raises(AttributeError):
        table.as_of = "2000-01-01"  # type: ignore[misc]
    with pytest.raises(TypeError):
        table.models["free"] = Price(0, 0)  # type: ignore[index]


# --- model matching ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-2025-04-16", "o3"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-opus-4-0", "claude-opus-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite"),
        ("models/gemini-2.5-pro-preview-05-06", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("  GPT-4o-2024-08-06 ", "gpt-4o"),
    ],
)
def test_dated_and_versioned_names_find_their_row(table: PriceTable, model: str, row: str) -> None:
    assert table.resolve(model) == row


def test_gpt_4o_mini_is_never_priced_as_gpt_4o(table: PriceTable) -> None:
    assert table.price("gpt-4o-mini") == EXPECTED["gpt-4o-mini"]
    only_4o = PriceTable(as_of="2026-01-01", source=(), models={"gpt-4o": Price(2.5, 10.0)})
    for model in ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-search-preview"):
        assert only_4o.resolve(model) is None, model


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-mini-search-preview",
        "gpt-5-codex",
        "claude-sonnet-4-5-extra",
        "o3-pro",
        "my-local-llama",
        "",
        None,
    ],
)
def test_no_prefix_matching_unknown_is_unpriced(table: PriceTable, model: str | None) -> None:
    assert table.resolve(model) is None
    assert table.price(model) is None


def test_a_snapshot_priced_apart_is_matched_exactly_first(table: PriceTable) -> None:
    assert table.price("gpt-4o-2024-05-13") == Price(5.0, 15.0, None, None)


def test_a_null_row_stays_unpriced_rather_than_falling_back(table: PriceTable) -> None:
    assert table.resolve("gemini-2.5-flash-preview-05-20") == "gemini-2.5-flash-preview-05-20"
    assert table.price("gemini-2.5-flash-preview-05-20") is None


# --- cost arithmetic ---------------------------------------------------------------------


def test_openai_prompt_tokens_include_cached_tokens(table: PriceTable) -> None:
    # 6,000 fresh x $2.50 + 4,000 cached x $1.25 + 500 out x $10 = $0.015 + $0.005 + $0.005
    price = EXPECTED["gpt-4o"]
    assert cost(price, OPENAI, 10_000, 500, 4_000, None) == pytest.approx(0.025)


def test_anthropic_input_tokens_exclude_cache_reads_and_writes() -> None:
    # 1,000 x $3 + 20,000 x $0.30 + 5,000 x $3.75 + 800 x $15 = 3,000 + 6,000 + 18,750 + 12,000
    price = EXPECTED["claude-sonnet-4-5"]
    assert cost(price, ANTHROPIC, 1_000, 800, 20_000, 5_000) == pytest.approx(0.03975)


def test_gemini_prompt_token_count_includes_cached_content() -> None:
    # 4,000 fresh x $0.30 + 8,000 cached x $0.03 + 1,000 out x $2.50 = 1,200 + 240 + 2,500
    price = EXPECTED["gemini-2.5-flash"]
    assert cost(price, GEMINI, 12_000, 1_000, 8_000, None) == pytest.approx(0.00394)


def test_no_cache_rate_means_cached_tokens_cost_the_input_rate(table: PriceTable) -> None:
    # gemini-2.0-flash-lite has no cache price: 10,000 x $0.075 + 100 x $0.30
    lite = table.price("gemini-2.0-flash-lite")
    assert lite is not None and lite.cache_read is None
    assert cost(lite, GEMINI, 10_000, 100, 2_000, None) == pytest.approx(0.00078)
    # and an Anthropic-style count adds them at the input rate: (1,000 + 2,000) x $5 + 0
    assert cost(Price(5.0, 25.0), ANTHROPIC, 1_000, 0, 2_000, None) == pytest.approx(0.015)


def test_none_counts_as_zero() -> None:
    assert cost(EXPECTED["gpt-4o"], OPENAI, None, None, None, None) == 0.0
    assert cost(EXPECTED["gpt-4o"], OPENAI, 1_000_000, None, None, None) == pytest.approx(2.5)


def test_unknown_provider_takes_counts_as_disjoint() -> None:
    price = Price(1.0, 2.0, 0.5, 1.5)
    assert cost(price, None, 100, 10, 40, 20) == pytest.approx((100 + 20 + 20 + 30) / 1e6)


def test_cost_of_totals_reads_real_wire_usage(table: PriceTable) -> None:
    body = {
        "usage": {
            "prompt_tokens": 10_000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 4_000},
        }
    }
    usage = extract_usage(OPENAI, json.dumps(body).encode(), JSON)
    assert cost_of_totals(table, "gpt-4o-2024-08-06", OPENAI, usage) == pytest.approx(0.025)
    claude = {
        "usage": {
            "input_tokens": 1_000,
            "output_tokens": 800,
            "cache_read_input_tokens": 20_000,
            "cache_creation_input_tokens": 5_000,
        }
    }
    usage = extract_usage(ANTHROPIC, json.dumps(claude).encode(), JSON)
    assert cost_of_totals(table, "claude-sonnet-4-5-20250929", ANTHROPIC, usage) == pytest.approx(0.03975)
    gemini = {
        "usageMetadata": {
            "promptTokenCount": 12_000,
            "candidatesTokenCount": 600,
            "thoughtsTokenCount": 400,
            "cachedContentTokenCount": 8_000,
        }
    }
    usage = extract_usage(GEMINI, json.dumps(gemini).encode(), JSON)
    assert cost_of_totals(table, "gemini-2.5-flash", GEMINI, usage) == pytest.approx(0.00394)


def test_unpriced_is_none_never_zero(table: PriceTable) -> None:
    assert cost_of_totals(table, "no-such-model", OPENAI, Usage(100, 10)) is None
    assert cost_of_totals(table, None, OPENAI, Usage(100, 10)) is None
    assert cost_of_totals(table, "gpt-4o", OPENAI, Usage()) == 0.0


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10_000_000))
steps = st.lists(st.tuples(counts, counts, counts, counts), min_size=1, max_size=20)


@given(steps, st.sampled_from([OPENAI, ANTHROPIC, GEMINI, None]))
def test_cost_of_sums_is_sum_of_costs(rows: list[tuple[int | None, ...]], provider: Provider | None) -> None:
    price = Price(3.0, 15.0, 0.3, 3.75)
    each = sum(cost(price, provider, *row) for row in rows)
    sums = [sum(value or 0 for value in column) for column in zip(*rows, strict=True)]
    assert cost(price, provider, *sums) == pytest.approx(each, rel=1e-9, abs=1e-9)


# --- overrides ---------------------------------------------------------------------------


def test_no_home_and_no_override_is_the_bundled_table(tmp_path: Path) -> None:
    assert load_prices(None, environ={}) is bundled_prices()
    assert load_prices(tmp_path, environ={}) is bundled_prices()


def test_home_override_extends_and_replaces(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prices.json",
        {
            "source": "https://example.com/our-contract",
            "as_of": "2026-11-01",
            "models": {
                "gpt-4o": {"input": 2.0, "output": 8.0, "cache_read": 1.0, "cache_write": None},
                "Our-Finetune": {"input": 1.0, "output": 3.0},
            },
        },
    )
    table = load_prices(tmp_path, environ={})
    assert table.price("gpt-4o-2024-08-06") == Price(2.0, 8.0, 1.0, None)
    assert table.price("our-finetune") == Price(1.0, 3.0, None, None)
    assert table.price("claude-sonnet-4-5") == EXPECTED["claude-sonnet-4-5"]
    assert table.overrides == (str(path),)
    assert table.as_of == bundled_prices().as_of
    assert table.source[-1] == "https://example.com/our-contract"
    assert bundled_prices().price("gpt-4o") == EXPECTED["gpt-4o"]  # the bundled table is untouched


def test_override_can_unprice_and_alias(tmp_path: Path) -> None:
    write(tmp_path / "prices.json", {"models": {"o1": None}, "aliases": {"house-model": "gpt-4.1"}})
    table = load_prices(tmp_path, environ={})
    assert table.price("o1") is None
    assert table.price("house-model") == EXPECTED["gpt-4.1"]


def test_environment_names_the_override(tmp_path: Path) -> None:
    write(tmp_path / "prices.json", {"models": {"x": {"input": 1, "output": 1}}})
    env_file = write(tmp_path / "env.json", {"models": {"y": {"input": 2, "output": 2}}})
    table = load_prices(tmp_path, environ={PRICES_ENV: str(env_file)})
    assert table.price("y") == Price(2.0, 2.0) and table.price("x") is None


def test_explicit_override_wins(tmp_path: Path) -> None:
    env_file = write(tmp_path / "env.json", {"models": {"y": {"input": 2, "output": 2}}})
    explicit = write(tmp_path / "explicit.json", {"models": {"z": {"input": 3, "output": 3}}})
    table = load_prices(tmp_path, explicit, environ={PRICES_ENV: str(env_file)})
    assert table.price("z") == Price(3.0, 3.0) and table.price("y") is None


def test_environment_override_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="nope.json") as info:
        load_prices(None, environ={PRICES_ENV: str(missing)})
    assert info.value.hint


def test_empty_environment_value_is_ignored(tmp_path: Path) -> None:
    assert load_prices(None, environ={PRICES_ENV: ""}) is bundled_prices()


def test_real_environment_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "p.json", {"models": {"env-model": {"input": 1, "output": 1}}})
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert load_prices(None).price("env-model") == Price(1.0, 1.0)


def test_malformed_json_names_the_file_and_where(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.json", '{"models": {"gpt-4o": {"input": 2.5,, }}}')
    with pytest.raises(ConfigError) as info:
        load_prices(tmp_path, environ={})
    assert str(path) in str(info.value) and "line 1" in str(info.value)
    assert info.value.hint and "format" in info.value.hint


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1, 2], "JSON object"),
        ({"prices": {}}, "unknown key 'prices'"),
        ({"as_of": "2026-01-01"}, "missing 'models'"),
        ({"models": [1]}, "models must be an object"),
        ({"models": {"m": {"input": "2.5", "output": 1}}}, "models['m'].input must be a non-negative number"),
        ({"models": {"m": {"input": -1, "output": 1}}}, "models['m'].input"),
        ({"models": {"m": {"input": True, "output": 1}}}, "models['m'].input"),
        ({"models": {"m": {"input": 1}}}, "models['m'].output"),
        (
            {"models": {"m": {"input": 1, "output": 1, "cache_read": "x"}}},
            "cache_read must be a non-negative number or null",
        ),
        ({"models": {"m": {"input": 1, "output": 1, "cached_input": 0.5}}}, "unknown key 'cached_input'"),
        ({"models": {"m": 2.5}}, "must be an object or null"),
        ({"models": {}, "currency": "EUR"}, "currency must be 'USD'"),
        ({"models": {}, "format": 2}, "format must be 1"),
        ({"models": {}, "as_of": "last week"}, "as_of must be a date"),
        ({"models": {}, "source": [1]}, "source must be a URL"),
        ({"models": {}, "aliases": {"a": "no-such-model"}}, "alias 'a' names 'no-such-model'"),
    ],
)
def test_malformed_override_is_a_config_error_naming_the_file(
    tmp_path: Path, data: Any, problem: str
) -> None:
    path = write(tmp_path / "custom.json", data)
    with pytest.raises(ConfigError) as info:
        load_prices(None, path, environ={})
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert problem in message
    assert info.value.hint


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "p.json", '{"models": {"m": {"input": NaN, "output": 1}}}')
    with pytest.raises(ConfigError, match="models\\['m'\\].input"):
        load_prices(None, path, environ={})


def test_override_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "prices.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read the price override"):
        load_prices(tmp_path, environ={})


def test_table_mappings_are_read_only(tmp_path: Path) -> None:
    write(tmp_path / "prices.json", {"models": {"m": {"input": 1, "output": 1}}})
    table = load_prices(tmp_path, environ={})
    assert isinstance(table.models, MappingProxyType) and isinstance(table.aliases, MappingProxyType)

"""Comparing two runs from their step rows, with bodies fetched only for the steps looked at."""

from __future__ import annotations

import json
from collections.abc import Mapping

from rewind.analysis.compare import MAX_DETAILED, Run, bisect_runs, compare, text_diff
from rewind.canon.fingerprint import canonical_request, fingerprint_of
from rewind.canon.meaning import response_meaning
from rewind.canon.providers import Provider
from rewind.store.compare_rows import CompareRow, StepDetail, StepKey
from rewind.store.models import SessionInfo

URL = "https://api.openai.com/v1/chat/completions"
HEADERS = (("content-type", "application/json"),)


def request(system: str, user: str) -> bytes:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


def response(text: str, rid: str = "x") -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return json.dumps({"id": rid, "choices": [choice]}).encode()


class Store:
    """Steps of fake sessions and the fetches made."""

    def __init__(self) -> None:
        self.details: dict[StepKey, StepDetail] = {}
        self.fetched: list[list[StepKey]] = []

    def fetch(self, keys: list[StepKey]) -> Mapping[StepKey, StepDetail]:
        self.fetched.append(keys)
        return {k: self.details[k] for k in keys}

    def run(
        self, sid: str, calls: list[tuple[bytes, bytes]], *, keep_meaning: bool = True, version: int = 2
    ) -> Run:
        rows = []
        for n, (req, resp) in enumerate(calls, 1):
            self.details[(sid, n)] = StepDetail(sid, n, URL, "openai", 200, None, HEADERS, HEADERS, req, resp)
            meaning = response_meaning(Provider.OPENAI, 200, "application/json", resp).digest()
            fp = fingerprint_of(canonical_request("POST", URL, HEADERS, req, Provider.OPENAI, version))
            endpoint = "POST api.openai.com/v1/chat/completions"
            rows.append(
                CompareRow(n, "llm", "POST", endpoint, fp, meaning if keep_meaning else None, "gpt-4o", None)
            )
        info = SessionInfo(sid, sid, "record", 0.0, (), "/", "complete")
        return Run(info, rows, self.fetch)


def test_ids_do_not_count_and_nothing_is_fetched_for_identical_runs() -> None:
    store = Store()
    a = store.run(
        "a", [(request("S", "q1"), response("r1", "id1")), (request("S", "q2"), response("r2", "id2"))]
    )
    b = store.run(
        "b", [(request("S", "q1"), response("r1", "id9")), (request("S", "q2"), response("r2", "id8"))]
    )
    comparison = compare(a, b)
    assert comparison.identical and comparison.matched == 2 and store.fetched == []
    found, changes = bisect_runs(a, b)
    assert found.identical and changes == []


def test_old_steps_without_a_meaning_get_one_from_their_body() -> None:
    store = Store()
    a = store.run("a", [(request("S", "q"), response("r", "1"))], keep_meaning=False)
    b = store.run("b", [(request("S", "q"), response("r", "2"))])
    assert compare(a, b).identical


def test_a_session_recorded_under_fingerprint_v1_compares_with_a_v2_one() -> None:
    store = Store()
    calls = [(request("S", "q1"), response("r1")), (request("S", "q2"), response("r2"))]
    old, new = store.run("a", calls, version=1), store.run("b", calls)
    assert all(v.fingerprint.startswith("v2:") for v in old.views)
    assert compare(old, new).identical


def test_changed_system_prompt_gives_a_text_diff_and_the_cause() -> None:
    store = Store()
    a = store.run("a", [(request("Be kind.", "q"), response("yes"))])
    b = store.run("b", [(request("Be rude.", "q"), response("no"))])
    pair = compare(a, b).pairs[0]
    fields = {c.field: c for c in pair.changes or []}
    assert fields["system"].diff == ["@@ -1 +1 @@", "-Be kind.", "+Be rude."]
    assert fields["text"].diff == ["@@ -1 +1 @@", "-yes", "+no"]
    found, changes = bisect_runs(a, b)
    assert found.cause is not None and found.cause.kind == "system_prompt"
    assert [c.field for c in changes] == ["system", "text"]


def test_inserted_and_deleted_steps_keep_later_steps_matched() -> None:
    store = Store()
    calls = [(request("S", f"q{i}"), response(f"r{i}")) for i in range(5)]
    a = store.run("a", calls)
    b = store.run("b", [*calls[:2], (request("S", "extra"), response("x")), *calls[2:4]])
    statuses = [
        (str(p.pair.status), p.pair.a and p.pair.a.step, p.pair.b and p.pair.b.step)
        for p in compare(a, b).pairs
    ]
    assert statuses == [
        ("same", 1, 1),
        ("same", 2, 2),
        ("only_b", None, 3),
        ("same", 3, 4),
        ("same", 4, 5),
        ("only_a", 5, None),
    ]


def test_text_diff_has_no_file_headers() -> None:
    assert text_diff("a\nb\n", "a\nc\n") == ["@@ -1,2 +1,2 @@", " a", "-b", "+c"]
    assert MAX_DETAILED > 0


def test_telemetry_uploads_are_not_part_of_the_comparison() -> None:
    store = Store()
    calls = [(request("S", "q1"), response("r1"))]
    a, b = store.run("a", calls), store.run("b", calls)
    trace = CompareRow(2, "telemetry", "POST", "POST api.openai.com/v1/traces/ingest", "v2:" + "1" * 64,
                       "m1:x", None, None)
    with_trace = Run(b.info, [*(CompareRow(v.step, v.kind, v.method, v.endpoint, v.fingerprint, v.meaning,
                                           v.model, v.reported_model) for v in b.views), trace], store.fetch)
    assert compare(a, with_trace).identical and len(with_trace.views) == 1

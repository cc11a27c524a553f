"""Facts are stored, listed, deprecated and superseded, never overwritten; reads travel in time."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest
from ulid import ULID

import cortex
from cortex import Conflict, CortexSync, NotFound, Settings, ValidationError


def test_store_then_get_returns_the_same_fact_with_its_ledger_seq(memory: CortexSync) -> None:
    fact = memory.store(
        "Redis runs on port 6380 in staging",
        project="infra",
        fact_type="config",
        tags=["redis", "staging"],
        source="agent-7",
        confidence=0.9,
        meta={"ticket": "OPS-12"},
    )
    got = memory.get(fact.id)
    assert got == fact
    assert got.seq == 0
    assert got.tags == ("redis", "staging")
    assert got.status == "active"
    assert got.valid_from == got.created_at


def test_store_many_assigns_dense_seqs_and_ulids_in_order(memory: CortexSync) -> None:
    facts = memory.store_many([{"content": f"fact number {i}"} for i in range(50)])
    assert [f.seq for f in facts] == list(range(50))
    assert [f.id for f in facts] == sorted(f.id for f in facts)
    for fact in facts:
        ulid = ULID.from_str(fact.id)
        assert str(ulid) == fact.id
        assert abs(ulid.datetime - fact.created_at) < timedelta(milliseconds=1)


def test_store_many_with_one_invalid_item_writes_nothing(memory: CortexSync) -> None:
    items = [{"content": "fine"}, {"content": "   "}, {"content": "also fine"}]
    with pytest.raises(ValidationError, match="item 1"):
        memory.store_many(items)
    assert memory.stats().facts == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"content": ""}, "non-empty"),
        ({"content": "x", "confidence": 1.5}, "between 0 and 1"),
        ({"content": "x", "project": "has space"}, "project"),
        ({"content": "x", "project": "infra\n"}, "project"),
        ({"content": "x", "tags": ["a,b"]}, "tag"),
        ({"content": "x", "meta": {"n": float("nan")}}, "canonical"),
        ({"content": "x", "valid_from": "2026-03-03", "valid_until": "2026-03-01"}, "later"),
        ({"content": "x", "valid_from": "yesterday"}, "timestamp"),
        ({"content": "x" * 1_048_577}, "limit"),
        ({"content": "x", "tenant": "../etc"}, "tenant"),
    ],
)
def test_invalid_input_is_a_validation_error_naming_the_field(
    memory: CortexSync, kwargs: dict[str, object], message: str
) -> None:
    options = dict(kwargs)
    content = options.pop("content")
    with pytest.raises(ValidationError, match=message):
        memory.store(content, **options)  # type: ignore[arg-type]
    assert memory.stats().facts == 0


def test_get_of_an_unknown_id_is_not_found(memory: CortexSync) -> None:
    with pytest.raises(NotFound):
        memory.get("01J0000000000000000000000")


def test_tenants_are_isolated(memory: CortexSync) -> None:
    fact = memory.store("acme secret plan", tenant="acme")
    with pytest.raises(NotFound):
        memory.get(fact.id, tenant="globex")
    assert memory.list(tenant="globex").items == ()
    assert [f.id for f in memory.list(tenant="acme").items] == [fact.id]
    with pytest.raises(NotFound):
        memory.deprecate(fact.id, "not mine", tenant="globex")


def test_deprecate_keeps_the_fact_and_hides_it_from_default_listing(memory: CortexSync) -> None:
    fact = memory.store("The VPN uses WireGuard")
    deprecated = memory.deprecate(fact.id, "replaced by Tailscale")
    assert deprecated.status == "deprecated"
    assert deprecated.deprecation_reason == "replaced by Tailscale"
    assert memory.get(fact.id).content == "The VPN uses WireGuard"
    assert memory.list().items == ()
    assert [f.id for f in memory.list(include_inactive=True).items] == [fact.id]


def test_deprecating_twice_is_a_conflict_and_needs_a_reason(memory: CortexSync) -> None:
    fact = memory.store("x is y")
    with pytest.raises(ValidationError, match="reason"):
        memory.deprecate(fact.id, "  ")
    memory.deprecate(fact.id, "wrong")
    with pytest.raises(Conflict):
        memory.deprecate(fact.id, "still wrong")


def test_supersede_links_both_versions_and_history_lists_them(memory: CortexSync) -> None:
    old = memory.store("Billing runs on Tuesdays", project="ops", tags=["billing"])
    new = memory.supersede(old.id, "Billing runs on Wednesdays", reason="schedule changed")
    assert new.supersedes == old.id
    assert new.project == "ops"
    assert new.tags == ("billing",)
    assert memory.get(old.id).superseded_by == new.id
    assert memory.get(old.id).status == "superseded"
    history = memory.history(old.id)
    assert [v.fact.id for v in history] == [old.id, new.id]
    assert [tx.op for tx in history[0].transactions] == ["store"]
    assert [tx.op for tx in history[1].transactions] == ["supersede"]
    assert memory.history(new.id) == history
    with pytest.raises(Conflict):
        memory.supersede(old.id, "Billing runs on Fridays")


def test_as_of_returns_exactly_what_was_valid_then(memory: CortexSync) -> None:
    first = memory.store("Office is in Berlin")
    time.sleep(0.01)
    before_change = datetime.now(UTC)
    time.sleep(0.01)
    second = memory.supersede(first.id, "Office is in Munich")
    after_change = datetime.now(UTC)

    then = memory.list(as_of=before_change).items
    assert [f.id for f in then] == [first.id]
    assert then[0].status == "active"  # as recorded then: not yet superseded
    assert memory.get(first.id, as_of=before_change).superseded_by is None
    assert [f.id for f in memory.list(as_of=after_change).items] == [second.id]
    with pytest.raises(NotFound):
        memory.get(second.id, as_of=before_change)
    with pytest.raises(NotFound):
        memory.get(first.id, as_of=after_change)


def test_valid_from_and_valid_until_bound_what_as_of_sees(memory: CortexSync) -> None:
    memory.store(
        "Q1 freeze on deploys", valid_from="2026-01-01T00:00:00Z", valid_until="2026-04-01"
    )
    assert len(memory.list(as_of="2026-02-15").items) == 0  # not yet recorded then
    now = datetime.now(UTC)
    assert len(memory.list(as_of=now).items) == 0  # recorded now, but no longer valid
    assert len(memory.list().items) == 1  # the current record lists it


def test_list_filters_by_project_type_tags_and_source(memory: CortexSync) -> None:
    memory.store("a", project="p1", fact_type="config", tags=["x", "y"], source="s1")
    memory.store("b", project="p1", fact_type="error", tags=["x"], source="s2")
    memory.store("c", project="p2", fact_type="config", tags=["y"], source="s1")

    def contents(**kw: object) -> list[str]:
        return [f.content for f in memory.list(**kw).items]  # type: ignore[arg-type]

    assert contents(project="p1") == ["a", "b"]
    assert contents(fact_type="config") == ["a", "c"]
    assert contents(tags=["x"]) == ["a", "b"]
    assert contents(tags=["x", "y"]) == ["a"]
    assert contents(source="s1") == ["a", "c"]
    assert contents(project="p2", tags=["x"]) == []


def test_cursor_pagination_visits_every_fact_once(memory: CortexSync) -> None:
    stored = memory.store_many([{"content": f"item {i}"} for i in range(25)])
    seen: list[str] = []
    cursor = None
    while True:
        page = memory.list(limit=10, cursor=cursor)
        seen += [f.id for f in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f.id for f in stored]
    with pytest.raises(ValidationError):
        memory.list(limit=0)


def test_unicode_content_round_trips(memory: CortexSync) -> None:
    text = 'Zürich 東京 \u2028 emoji 🧠 "quoted" \\ back\nslash \x01'
    fact = memory.store(text, tags=["ünï"])
    assert memory.get(fact.id).content == text
    assert memory.verify().ok


def test_a_closed_handle_refuses_calls(settings: cortex.Settings) -> None:
    handle = cortex.connect(settings)
    handle.close()
    handle.close()
    with pytest.raises(cortex.StoreClosed):
        handle.store("late")


def test_opening_an_uninitialised_home_names_cortex_init(tmp_path: object) -> None:
    with pytest.raises(cortex.ConfigError, match="cortex init"):
        cortex.connect(str(tmp_path) + "/nowhere")


async def test_async_engine_has_the_same_behaviour(engine: cortex.Cortex) -> None:
    fact = await engine.store("async fact", tags=["a"])
    assert (await engine.get(fact.id)).content == "async fact"
    newer = await engine.supersede(fact.id, "async fact v2")
    assert [v.fact.id for v in await engine.history(fact.id)] == [fact.id, newer.id]
    assert (await engine.verify()).ok


def test_timestamps_are_strictly_increasing(memory: CortexSync) -> None:
    facts = memory.store_many([{"content": f"t{i}"} for i in range(100)])
    created = [f.created_at for f in facts]
    assert all(b - a >= timedelta(microseconds=1) for a, b in itertools.pairwise(created))


async def test_init_home_works_inside_a_running_event_loop(tmp_path: object) -> None:
    settings = cortex.Settings.load(str(tmp_path) + "/async-home")
    result = cortex.init_home(settings)
    assert result.created
    async with await cortex.open(settings) as engine:
        assert (await engine.store("made in a loop")).seq == 0


async def test_a_blocking_handle_closes_from_inside_async_code(settings: Settings) -> None:
    handle = cortex.connect(settings)
    handle.store("stored through the blocking handle")
    handle.close()
    with pytest.raises(cortex.StoreClosed):
        handle.store("after close")


def test_the_blocking_handle_shows_the_engine_methods_parameters() -> None:
    import inspect

    parameters = inspect.signature(CortexSync.search).parameters
    assert {"query", "k", "mode", "project", "as_of", "tenant"} <= set(parameters)

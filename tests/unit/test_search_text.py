"""Specification of cortex.search.text: what is indexed, and safe FTS5 queries that find it.

Round trips run against a real FTS5 table in an in-memory SQLite database, created with
`FTS5_TOKENIZER` exactly as the store creates its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import apsw
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex.errors import ValidationError
from cortex.search.text import (
    _CASE_CHANGE,
    FTS5_TOKENIZER,
    MAX_QUERY_TERMS,
    fts5_query,
    index_text,
)

DOCUMENTS = {
    "backoff": "Set retry_backoff_ms to 250 before the nightly deploy.",
    "camel": "The client reads maxRetryCount from its settings.",
    "module": "The writer lives in cortex.store.sqlite and owns the WAL.",
    "route": "Users are served by src/api/routes/users.py since March.",
    "flag": "Always run the migration with --dry-run first.",
    "operators": 'Our motto was "near (and) far"; column:value pairs and wildcard* globs.',
    "cafe": "Notes from the café about the naïve résumé parser.",
    "german": "Die Größe der Datei überschreitet das Limit von zehn Megabyte.",
    "japanese": "東京タワーの高さは333メートルです。",
    "deploying": "We are deploying the billing service on Fridays.",
}
NAMES = list(DOCUMENTS)
MATCH_SQL = "SELECT rowid FROM fact_text WHERE fact_text MATCH ?"

# One FTS5 string ("..." with "" inside), optionally a prefix, joined by one operator.
SAFE_EXPRESSION = re.compile(r'"(?:[^"]|"")+"\*?(?:(?: OR | AND )"(?:[^"]|"")+"\*?)*')


def create_text_table(connection: apsw.Connection) -> None:
    connection.execute(
        f'CREATE VIRTUAL TABLE fact_text USING fts5(content, tags, tokenize = "{FTS5_TOKENIZER}")'
    )


@pytest.fixture(scope="module")
def indexed() -> Iterator[apsw.Connection]:
    """An in-memory FTS5 table holding `DOCUMENTS` as `index_text` prepares them."""
    connection = apsw.Connection(":memory:")
    create_text_table(connection)
    for rowid, content in enumerate(DOCUMENTS.values()):
        connection.execute(
            "INSERT INTO fact_text(rowid, content, tags) VALUES (?, ?, '')",
            (rowid, index_text(content)),
        )
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def empty_table() -> Iterator[apsw.Connection]:
    """An in-memory FTS5 table with no rows, to check that expressions parse."""
    connection = apsw.Connection(":memory:")
    create_text_table(connection)
    yield connection
    connection.close()


def matching(connection: apsw.Connection, query: str, mode: str = "any") -> set[str]:
    """Names of the documents that `query` finds, searched as the store does."""
    expression = fts5_query(query, mode=mode)
    if expression is None:
        return set()
    return {NAMES[rowid] for (rowid,) in connection.execute(MATCH_SQL, (expression,))}


def is_accepted_by_fts5(connection: apsw.Connection, expression: str) -> bool:
    sql = "SELECT count(*) FROM fact_text WHERE fact_text MATCH ?"
    connection.execute(sql, (expression,)).fetchall()
    return True


# ---- the tokenizer ----


def test_fts5_keeps_a_run_of_cjk_characters_as_one_token_so_index_text_spaces_them() -> None:
    connection = apsw.Connection(":memory:")
    tokenize = connection.fts5_tokenizer("unicode61", ["remove_diacritics", "2"])
    tokens = tokenize(
        "東京タワー".encode(),
        apsw.FTS5_TOKENIZE_DOCUMENT,
        None,
        include_offsets=False,
        include_colocated=False,
    )
    assert tokens == ["東京タワー"]
    assert index_text("東京タワー") == "東京タワー\n東 京 タ ワ ー"


# ---- index_text ----


@pytest.mark.parametrize(
    ("identifier", "parts"),
    [
        ("retry_backoff_ms", "retry backoff ms"),
        ("maxRetryCount", "max retry count"),
        ("HTTPServerError", "http server error"),
        ("my_pkg.sub_mod", "my pkg sub mod"),
        ("src/api/user_routes.py", "src api user routes py"),
        ("__init__", "init"),
        ("Python3のインストール", "python3 の イ ン ス ト ー ル"),
    ],
)
def test_index_text_appends_the_parts_of_each_identifier(identifier: str, parts: str) -> None:
    content = f"see {identifier} today"
    assert index_text(content) == f"{content}\n{parts}"


@pytest.mark.parametrize("name", ["cortex.store.sqlite", "src/api/routes/users.py", "--dry-run"])
def test_index_text_adds_nothing_for_names_the_tokenizer_splits_itself(name: str) -> None:
    content = f"see {name} today"
    assert index_text(content) == content


def test_index_text_leaves_plain_prose_as_written() -> None:
    prose = "We deploy the Billing service on Fridays, not on Mondays!"
    assert index_text(prose) == prose


def test_index_text_adds_the_parts_of_a_repeated_identifier_once() -> None:
    content = "retry_backoff_ms is 250; raise retry_backoff_ms after the maxRetryCount change"
    assert index_text(content) == f"{content}\nretry backoff ms\nmax retry count"


@given(st.text())
def test_index_text_always_starts_with_the_content_unchanged(content: str) -> None:
    assert index_text(content).startswith(content)


@given(st.text(alphabet="aZbY09_ .-\n", max_size=12))
def test_the_fast_path_is_taken_exactly_where_no_ascii_token_has_parts(content: str) -> None:
    may_split = re.search(r"_|[a-z0-9][A-Z]|[A-Z][A-Z][a-z]", content) is not None
    fast = "_" not in content and _CASE_CHANGE.search(content) is None

    assert fast == (not may_split)


# ---- fts5_query: the expression ----


def test_terms_are_quoted_and_joined_with_or_unless_all_are_required() -> None:
    assert fts5_query("How do we deploy the service?") == '"deploy" OR "service"'
    assert fts5_query("How do we deploy the service?", mode="all") == '"deploy" AND "service"'


def test_an_identifier_is_searched_whole_and_in_parts() -> None:
    assert fts5_query("retry_backoff_ms") == '"retry_backoff_ms" OR "retry" OR "backoff" OR "ms"'
    assert fts5_query("src/api") == '"src/api" OR "src" OR "api"'


def test_a_trailing_star_makes_a_prefix_term() -> None:
    assert fts5_query("deploy*") == '"deploy"*'
    assert fts5_query("retry_back*") == '"retry_back"* OR "retry" OR "back"*'


def test_a_prefix_term_keeps_a_stop_word_the_user_asked_for_explicitly() -> None:
    assert fts5_query("the the*") == '"the"*'


def test_a_cjk_run_becomes_its_two_character_phrases() -> None:
    assert fts5_query("東京") == '"東 京"'
    assert fts5_query("東京タワー") == '"東 京" OR "京 タ" OR "タ ワ" OR "ワ ー"'
    assert fts5_query("猫") == '"猫"'


def test_duplicate_terms_are_dropped_ignoring_case() -> None:
    assert fts5_query("Deploy deploy DEPLOY service deploy") == '"deploy" OR "service"'


def test_at_most_max_query_terms_terms_are_kept_in_order_of_appearance() -> None:
    expression = fts5_query(" ".join(f"word{number}" for number in range(200)))
    assert expression is not None
    terms = expression.split(" OR ")
    assert len(terms) == MAX_QUERY_TERMS == 64
    assert terms[0] == '"word0"'
    assert terms[-1] == '"word63"'


@pytest.mark.parametrize(
    "query",
    ["", "   \n\t", "the and of", "What is it, and why?", "?!... -- ()", '""', "*", "\u0301\u0308"],
)
def test_a_query_with_nothing_searchable_is_none(query: str) -> None:
    assert fts5_query(query) is None


@pytest.mark.parametrize(
    "query",
    [
        'NEAR(deploy service, 3) AND "x" OR title:y NOT z',
        'say "hello" (world)',
        "-excluded +required ^start col:umn {a b}:c",
        "a* OR * AND ** \"'",
    ],
)
def test_operators_and_punctuation_in_the_query_become_quoted_words(
    query: str, empty_table: apsw.Connection
) -> None:
    expression = fts5_query(query)
    assert expression is not None
    assert SAFE_EXPRESSION.fullmatch(expression)
    assert is_accepted_by_fts5(empty_table, expression)


def test_an_unknown_mode_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="'any' or 'all'"):
        fts5_query("deploy", mode="some")


@given(query=st.text())
def test_any_query_gives_none_or_an_expression_fts5_accepts(
    query: str, empty_table: apsw.Connection
) -> None:
    for mode in ("any", "all"):
        expression = fts5_query(query, mode=mode)
        if expression is not None:
            assert SAFE_EXPRESSION.fullmatch(expression)
            assert is_accepted_by_fts5(empty_table, expression)


@given(query=st.text(alphabet='"*():^-+{}, .\\/_NEARORANDNOTx東京\u0301\x00', max_size=60))
def test_queries_made_of_fts5_syntax_give_expressions_fts5_accepts(
    query: str, empty_table: apsw.Connection
) -> None:
    expression = fts5_query(query, mode="all")
    if expression is not None:
        assert is_accepted_by_fts5(empty_table, expression)


@pytest.mark.parametrize(
    "query",
    [
        " ".join(f"word{number}" for number in range(15_000)),
        "x" * 100_000,
        "a." * 50_000,
        "!?" * 50_000,
        "東京タワー" * 20_000,
        "ab_Cd" * 20_000,
    ],
    ids=["many-words", "one-long-word", "long-dotted-name", "punctuation", "cjk-run", "identifier"],
)
def test_a_100_kb_query_is_answered_in_bounded_time(
    query: str, empty_table: apsw.Connection
) -> None:
    started = time.perf_counter()
    expression = fts5_query(query)
    if expression is not None:
        is_accepted_by_fts5(empty_table, expression)
    assert time.perf_counter() - started < 1.0


# ---- round trips through a real FTS5 table ----


@pytest.mark.parametrize(
    ("query", "mode", "found"),
    [
        ("backoff", "any", {"backoff"}),
        ("retry_backoff_ms", "all", {"backoff"}),
        ("retry", "any", {"backoff", "camel"}),
        ("max retry count", "all", {"camel"}),
        ("MaxRetryCount", "all", {"camel"}),
        ("sqlite", "any", {"module"}),
        ("cortex.store.sqlite", "all", {"module"}),
        ("routes", "any", {"route"}),
        ("api/routes/users.py", "all", {"route"}),
        ("dry", "any", {"flag"}),
        ("--dry-run", "all", {"flag"}),
    ],
)
def test_identifiers_are_found_whole_and_by_their_parts(
    indexed: apsw.Connection, query: str, mode: str, found: set[str]
) -> None:
    assert matching(indexed, query, mode) == found


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"near (and) far"', {"operators"}),
        ("NEAR", {"operators"}),
        ("column:value", {"operators"}),
        ("wildcard*", {"operators"}),
        ("motto AND (NOT far)", {"operators"}),
    ],
)
def test_fts5_syntax_in_a_query_is_searched_as_text(
    indexed: apsw.Connection, query: str, found: set[str]
) -> None:
    assert matching(indexed, query, "all") == found


def test_a_stop_word_only_query_finds_nothing(indexed: apsw.Connection) -> None:
    assert fts5_query("the and of") is None
    assert matching(indexed, "the and of") == set()


def test_english_words_match_their_inflections(indexed: apsw.Connection) -> None:
    assert matching(indexed, "deploys") == {"backoff", "deploying"}
    assert matching(indexed, "deplo*") == {"backoff", "deploying"}


def test_accents_are_folded_both_ways(indexed: apsw.Connection) -> None:
    assert matching(indexed, "cafe naive resume", "all") == {"cafe"}
    assert matching(indexed, "CAFÉ") == {"cafe"}


def test_a_german_query_finds_german_text_with_or_without_umlauts(
    indexed: apsw.Connection,
) -> None:
    assert matching(indexed, "Größe der Datei", "all") == {"german"}
    assert matching(indexed, "uberschreitet Limit", "all") == {"german"}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("東京タワー", {"japanese"}),
        ("タワー", {"japanese"}),
        ("メートル", {"japanese"}),
        ("高さ", {"japanese"}),
        ("大阪城", set()),
    ],
)
def test_a_japanese_word_finds_the_sentence_containing_it(
    indexed: apsw.Connection, query: str, found: set[str]
) -> None:
    assert matching(indexed, query, "all") == found


WORDS = st.from_regex(r"[a-z]{2,8}", fullmatch=True) | st.text(
    alphabet="東京大阪タワーメトル", min_size=1, max_size=4
)


def joined(words: list[str], style: str) -> str:
    if style == "camel":
        return words[0] + "".join(word.capitalize() for word in words[1:])
    return style.join(words)


@given(
    words=st.lists(WORDS, min_size=1, max_size=4),
    style=st.sampled_from(["_", ".", "/", "-", "::", "camel"]),
)
def test_an_indexed_identifier_is_found_whole_and_by_each_of_its_words(
    words: list[str], style: str
) -> None:
    identifier = joined(words, style)
    connection = apsw.Connection(":memory:")
    create_text_table(connection)
    connection.execute(
        "INSERT INTO fact_text(rowid, content, tags) VALUES (0, ?, '')",
        (index_text(f"note: {identifier} changed."),),
    )
    for query in (identifier, *words):
        expression = fts5_query(query, mode="all")
        if expression is None:
            continue
        rows = connection.execute(MATCH_SQL, (expression,)).fetchall()
        assert rows == [(0,)], (query, expression)
    connection.close()

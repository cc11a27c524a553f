"""Full-text search over SQLite FTS5: the text to index and safe MATCH expressions (pure, no I/O).

Two functions share one way of reading text, so that what a query asks for is what the index
holds:

* `index_text` returns the content unchanged, followed by the parts of the code identifiers it
  contains (``retry_backoff_ms`` -> ``retry backoff ms``, ``maxRetryCount`` ->
  ``max retry count``, ``src/api/users.py`` -> ``src api users py``) and by its CJK text written
  one character per token.
* `fts5_query` turns free text from a user into an FTS5 expression made only of quoted strings
  joined by ``OR`` or ``AND``: no input can inject FTS5 syntax (column filters, ``NEAR``,
  ``NOT``, parentheses) or make MATCH fail.

What FTS5's unicode61 tokenizer does with CJK: Han, kana and Hangul letters are word characters,
so a run of them without spaces ("東京タワーに行きました") becomes ONE token, and a query for a
word inside it ("東京") would find nothing. Hence `index_text` also writes every CJK run with a
space between its characters (one token each), and `fts5_query` turns a CJK run into its
overlapping two-character phrases (``"東 京" OR "京 タ" ...``): a phrase matches adjacent
tokens, so each one is a substring test, and BM25 ranks text holding more of the run higher.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from cortex.errors import ValidationError
from cortex.store.sqlite.schema import FTS5_TOKENIZER

__all__ = ["FTS5_TOKENIZER", "MAX_QUERY_TERMS", "fts5_query", "index_text"]

# Use as `tokenize = "<FTS5_TOKENIZER>"` (double quotes: the value holds single quotes).
# - unicode61: Unicode-aware words (letters, digits) and case folding, for any language.
# - remove_diacritics 2: "cafe" finds "café" and "uberschreitet" finds "überschreitet"; 2 also
#   folds letters carrying several diacritics, which 1 leaves alone.
# - porter: English stemming ("deploying" finds "deploys"), for the prose agents write. Its
#   price: prefix queries are stemmed too, so "deploy*" looks for "deploi*" and misses
#   "deployment" (stemmed to "deploy"). Recall on ordinary words matters more than prefixes.
# - tokenchars '_': a snake_case identifier is one token, rare and so highly ranked by BM25 when
#   asked for whole; `index_text` adds its parts so that each part is findable as well.
# The store creates its FTS5 table with this tokenizer; it is defined beside that schema.

MAX_QUERY_TERMS = 64
"""`fts5_query` keeps at most this many distinct terms, in the order they appear."""

_MODES = {"any": " OR ", "all": " AND "}

# Words that say little about which memory is meant; dropped from queries, never from the index.
# Contraction fragments ("don't" reads as "don", "t") are included.
_ENGLISH_STOP_WORDS = """
    a about above after again against ain all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn d did didn do does doesn doing
    don down during each either else etc even ever every few for from further had hadn has hasn
    have haven having he her here hers herself him himself his how however i if in into is isn
    it its itself just ll m may me might more most must mustn my myself neither no nor not now o
    of off on once only or other our ours ourselves out over own re s same shall shan she should
    shouldn so some such t than that the their theirs them themselves then there these they this
    those through thus to too under until up upon us ve very was wasn we were weren what when
    where which while who whom whose why will with won would wouldn y yet you your yours
    yourself yourselves
"""
_STOP_WORDS = frozenset(_ENGLISH_STOP_WORDS.split())

# A word starts with a letter, digit or "_" and may carry combining diacritics (U+0300-U+036F),
# which unicode61 keeps inside the word when it folds them ("x\u0301y" is the token "xy").
_WORD = r"\w[\w\u0300-\u036f]*"
# Identifiers joined by "." "/" "\" ":" "@" "-" (module paths, file paths, URLs, flags, dates)
# are read as one compound; an optional "*" right after it asks for a prefix match.
_COMPOUND = re.compile(rf"(?P<compound>{_WORD}(?:[-./\\:@]+{_WORD})*)(?P<prefix>\*)?")
_CHUNK = re.compile(r"[\w\u0300-\u036f]+")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
# Han (with radicals, iteration and ideographic number marks), kana and Hangul.
_CJK_CLASS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"
    "\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{_CJK_CLASS}]")
# Where ASCII text can hold a token with several parts: "_" (tested apart) or a case change,
# `[a-z0-9][A-Z]` or `[A-Z][A-Z][a-z]`. Written to start at the capital, so `re` skips to
# capitals at C speed (the plain alternation tried every position: 5.6 vs 1.6 us a fact).
_CASE_CHANGE = re.compile(r"[A-Z](?:(?<=[a-z0-9][A-Z])|(?=[A-Z][a-z]))")
# ASCII words whose only part is themselves (lower, UPPER or Capitalised, digits allowed).
_PLAIN_WORD = re.compile(r"[a-z0-9]+|[A-Z0-9]+|[A-Z][a-z0-9]+")
_CJK_OR_OTHER_RUN = re.compile(f"[{_CJK_CLASS}]+|[^{_CJK_CLASS}]+")


def index_text(content: str) -> str:
    """Returns `content` followed by the split parts of its identifiers and its CJK runs spaced.

    The original text comes first and unchanged, so BM25 and phrase queries see it as written.
    Each distinct identifier that FTS5's tokenizer would keep whole adds one line:
    ``retry_backoff_ms`` adds ``retry backoff ms``, ``maxRetryCount`` adds ``max retry count``,
    ``my_pkg.sub_mod`` adds ``my pkg sub mod`` and ``東京タワー`` adds ``東 京 タ ワ ー``. Names
    joined only by punctuation (``cortex.store.sqlite``, ``src/api/users.py``, ``--dry-run``) add
    nothing: the tokenizer splits them already. Text with nothing to add is returned as is.
    """
    if content.isascii() and "_" not in content and not _CASE_CHANGE.search(content):
        return content  # ASCII prose without identifiers: every word is its own only part
    additions: list[str] = []
    seen: set[str] = set()
    for match in _COMPOUND.finditer(unicodedata.normalize("NFC", content)):
        compound = match["compound"]
        if _PLAIN_WORD.fullmatch(compound) or compound in seen:
            continue  # a plain word is its own only part: nothing to add
        seen.add(compound)
        indexed = " ".join(" ".join(part) if _is_cjk(part) else part for part in _parts(compound))
        # FTS5 itself splits at the joining punctuation ("." "/" "-" ...): only parts beyond
        # that ("_", case changes, CJK characters) are worth indexing again.
        as_tokenized = " ".join(chunk.lower() for chunk in _CHUNK.findall(compound))
        if indexed and indexed != as_tokenized:
            additions.append(indexed)
    return "\n".join([content, *additions])


def fts5_query(text: str, *, mode: str = "any") -> str | None:
    """Returns a safe FTS5 MATCH expression for the free-text `text`, or None if it has no terms.

    Every term is a quoted FTS5 string, so operators, column filters, quotes and parentheses in
    `text` are read as words and the expression always parses. Terms are the words and numbers of
    `text`, each identifier whole and in parts (as `index_text` splits them), and the
    two-character phrases of its CJK runs; English stop words are dropped, duplicates removed
    (ignoring case) and at most `MAX_QUERY_TERMS` are kept. A word followed by ``*`` becomes a
    prefix term (``deploy*`` -> ``"deploy"*``) and keeps its stop words. `mode` ``"any"`` joins
    terms with ``OR``, ``"all"`` with ``AND``. None means the query has nothing to search for
    (only stop words or punctuation): the caller has no text hits.
    """
    try:
        joiner = _MODES[mode]
    except KeyError:
        raise ValidationError(f"text search mode must be 'any' or 'all', not {mode!r}") from None
    terms: dict[str, None] = {}
    for term in _query_terms(unicodedata.normalize("NFC", text)):
        terms.setdefault(term)
        if len(terms) == MAX_QUERY_TERMS:
            break
    return joiner.join(terms) if terms else None


def _query_terms(text: str) -> Iterator[str]:
    """Yields the FTS5 terms of `text` in order of appearance, duplicates included."""
    for match in _COMPOUND.finditer(text):
        compound, prefix = match["compound"], "*" if match["prefix"] else ""
        parts = _parts(compound)
        # A compound with CJK stays out whole: unicode61 glues a CJK run and its neighbours into
        # one token that a query rarely reproduces, and under AND it would reject good matches.
        whole = compound.lower()
        if whole != " ".join(parts) and not _CJK_CHAR.search(whole):
            yield _quoted(whole) + prefix
        for position, part in enumerate(parts, start=1):
            part_prefix = prefix if position == len(parts) else ""
            if _is_cjk(part):
                yield from _cjk_terms(part, part_prefix)
            elif part_prefix or part not in _STOP_WORDS:
                yield _quoted(part) + part_prefix


def _cjk_terms(run: str, prefix: str) -> Iterator[str]:
    """Yields the overlapping two-character phrases of a CJK run (the run itself if shorter)."""
    if len(run) == 1:
        yield _quoted(run) + prefix
        return
    for start in range(len(run) - 1):
        suffix = prefix if start == len(run) - 2 else ""
        yield _quoted(f"{run[start]} {run[start + 1]}") + suffix


def _parts(compound: str) -> list[str]:
    """The lowercase words of a compound: split at punctuation, "_", case changes and CJK edges."""
    return [
        word.lower()
        for chunk in _CHUNK.findall(compound)
        for piece in chunk.split("_")
        for run in _CJK_OR_OTHER_RUN.findall(piece)
        for word in _case_words(run)
        if _LETTER_OR_DIGIT.search(word)  # not diacritics alone: they are no token to FTS5
    ]


def _case_words(word: str) -> list[str]:
    """The camelCase words of `word` (maxRetryCount: max Retry Count; HTTPServer: HTTP Server)."""
    if word.islower() or word.isupper() or _is_cjk(word):
        return [word]
    words: list[str] = []
    start = 0
    for index in range(1, len(word)):
        previous, current = word[index - 1], word[index]
        starts_word = current.isupper() and (
            previous.islower()
            or previous.isdigit()
            or (previous.isupper() and word[index + 1 : index + 2].islower())
        )
        if starts_word:
            words.append(word[start:index])
            start = index
    words.append(word[start:])
    return words


def _is_cjk(word: str) -> bool:
    """True if `word` is a CJK run (the splitting in `_parts` never mixes CJK and other text)."""
    return _CJK_CHAR.match(word) is not None


def _quoted(term: str) -> str:
    """`term` as an FTS5 string: in double quotes, inner double quotes doubled."""
    return '"' + term.replace('"', '""') + '"'

"""Detectors of secrets and personal data, and `scan`: every finding in a text, by kind and span.

A detector is a kind name, a category (`secret` or `pii`), literal keywords that must occur in
the text before its patterns run (the cheap test that keeps scanning fast), and a function that
yields the character spans it finds. Patterns come from detect-secrets plugins where theirs are
exact (GitHub, GitLab, PyPI, SendGrid, OpenAI, Discord, Slack webhooks, AWS key ids) and are
CORTEX's own elsewhere. Every span covers only the sensitive value (a password, not the key name
before it), so redaction keeps the text readable.

Nothing here logs, stores or returns the matched values: findings carry offsets only.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import phonenumbers
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector

from cortex.shield.validators import (
    iban_valid,
    is_marker,
    is_placeholder,
    jwt_valid,
    payment_card_valid,
    shannon_entropy,
)

__all__ = [
    "CATEGORIES",
    "DETECTORS",
    "Category",
    "Detector",
    "Finding",
    "Scanner",
    "kinds",
    "scan",
]

Category = Literal["secret", "pii"]
CATEGORIES: tuple[Category, ...] = ("secret", "pii")
Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]


@dataclass(frozen=True, slots=True)
class Finding:
    """One sensitive value in a text: what kind it is and where (`text[start:end]`)."""

    kind: str
    category: Category
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of sensitive value and how to find it.

    `find` runs only when the text passes the detector's gates, cheap tests that every text
    holding a match passes (so they never cost a finding, only skip work):

    - `keywords`: one of them occurs in the text (compared lowercased when `ignore_case`);
    - `min_run`: the text has a run of at least this many characters without ASCII whitespace
      (vendor tokens are long; prose words are not);
    - `min_digits`: the text has at least this many digits;
    - `shape`: this sequence of character classes occurs in the text (`A` an ASCII capital,
      `a` an ASCII small letter, `9` a digit; a non-ASCII character counts as a digit).

    A detector without gates runs on every text. `assigned`: it finds values assigned to (or
    compared with) secret-sounding names, so in source code only a string literal counts (see
    `Syntax`).
    """

    kind: str
    category: Category
    find: Finder
    keywords: tuple[str, ...] = ()
    ignore_case: bool = False
    origin: Literal["detect-secrets", "cortex"] = "cortex"
    min_run: int = 0
    min_digits: int = 0
    shape: str = ""
    assigned: bool = False


# ------------------------------------------------------------------------------ building blocks

_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_ALNUM_AFTER = r"(?![A-Za-z0-9])"
_TOKEN_BEFORE = r"(?<![\w\-])"
_TOKEN_AFTER = r"(?![\w\-])"


def _bounded(
    pattern: re.Pattern[str], before: str = _TOKEN_BEFORE, after: str = _TOKEN_AFTER
) -> str:
    """A detect-secrets pattern wrapped so it cannot match inside a longer token."""
    return f"{before}(?:{pattern.pattern}){after}"


def _regex(
    *patterns: str,
    group: int | str = 0,
    check: Callable[[re.Match[str]], bool] | None = None,
    flags: int = 0,
    overlapping: bool = False,
) -> Finder:
    """A finder over `patterns`: the span of `group` of each match that passes `check`.

    A leading negative lookbehind on one character class (`(?<![\\w\\-])`) is checked here
    instead of by `re`: a pattern that starts with a literal (`ghp_`, `AIza`) is then searched
    for that literal at C speed rather than tried at every position. With `overlapping`, a
    rejected match is retried one character later (a phone number's tail followed by a card
    number must not hide the card).
    """
    compiled = tuple(_split_lookbehind(p, flags) for p in patterns)

    def find(text: str) -> Iterator[Span]:
        for pattern, before in compiled:
            match = pattern.search(text)
            while match is not None:
                at = match.start()
                accepted = not (before is not None and at > 0 and before.match(text, at - 1))
                start, end = match.span(group)
                if accepted and start < end and (check is None or check(match)):
                    yield start, end
                    match = pattern.search(text, max(match.end(), at + 1))
                else:
                    match = pattern.search(
                        text, at + 1 if overlapping else max(match.end(), at + 1)
                    )

    return find


_LEADING_LOOKBEHIND = re.compile(r"^(?P<flags>\(\?[a-zA-Z]+\))?\(\?<!(?P<chars>\[[^\]]+\])\)")


def _split_lookbehind(pattern: str, flags: int) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """`pattern` without its leading one-class negative lookbehind, and that class."""
    head = _LEADING_LOOKBEHIND.match(pattern)
    if head is None:
        return re.compile(pattern, flags), None
    rest = (head.group("flags") or "") + pattern[head.end() :]
    return re.compile(rest, flags), re.compile(head.group("chars"), flags)


def _anchored(
    pattern: str,
    *anchors: str,
    offset: int = 0,
    ignore_case: bool = False,
    group: int | str = 0,
    check: Callable[[re.Match[str]], bool] | None = None,
    flags: int = 0,
) -> Finder:
    """A finder like `_regex(pattern)` for a pattern whose every match holds one of the
    literal `anchors` exactly `offset` characters after its start: it is tried only there.

    For patterns that `re` cannot skip through quickly: those starting with a character class
    (`[0-9a-f]{32}-us\\d`) or a case-insensitive word (`(?i:authorization)`), which `re` tries
    at every position of the text. `str.find` jumps from anchor to anchor at C speed instead
    (in the lowercased text with `ignore_case`; anchors are then given in lowercase). Matches
    are the same as `re`'s left-to-right search: none starts inside an earlier one.
    """
    compiled = re.compile(pattern, flags)

    def find(text: str) -> Iterator[Span]:
        haystack = text.lower() if ignore_case else text
        if len(haystack) != len(text):  # a character whose lowercase is longer: offsets shift
            starts: Iterable[int] = range(len(text))
        else:
            starts = sorted(
                {at - offset for anchor in anchors for at in _occurrences(haystack, anchor)}
            )
        return _tried_at(compiled, text, starts, group=group, check=check)

    return find


def _tried_at(
    compiled: re.Pattern[str],
    text: str,
    starts: Iterable[int],
    *,
    group: int | str = 0,
    check: Callable[[re.Match[str]], bool] | None = None,
    overlapping: bool = False,
) -> Iterator[Span]:
    """The spans of `group` where `compiled` matches at one of `starts` (ascending) and passes
    `check`, as `_regex` finds them: no match starts inside an earlier one (with `overlapping`,
    only inside an accepted one). Negative starts are skipped."""
    resume = 0
    for at in starts:
        if at < resume or at < 0:
            continue
        match = compiled.match(text, at)
        if match is None:
            continue
        start, end = match.span(group)
        accepted = start < end and (check is None or check(match))
        if accepted:
            yield start, end
        if accepted or not overlapping:
            resume = max(match.end(), at + 1)


def _shaped(
    pattern: str, shape: bytes, check: Callable[[re.Match[str]], bool] | None = None
) -> Finder:
    """A finder like `_regex(pattern, check=check, overlapping=True)` for an ASCII-only pattern
    whose every accepted match starts where the pattern `shape` matches the text's classes
    (`_CLASSES`: `A` a capital, `a` a small letter, `9` a digit, ` ` a space, `.` the rest).

    `re` tries a pattern that starts with a character class at every such character (each
    capital letter of the text, for an IBAN; each digit, for a card number); one bytes search
    jumps between the places of the shape instead, and the pattern is tried only there.
    Characters outside ASCII are read as `?`, one byte each, so offsets stay those of the text:
    an ASCII-only pattern cannot match them.
    """
    compiled = re.compile(pattern, re.ASCII)
    places = re.compile(shape)

    def find(text: str) -> Iterator[Span]:
        classes = text.encode("ascii", "replace").translate(_CLASSES)
        starts = (place.start() for place in places.finditer(classes))
        return _tried_at(compiled, text, starts, check=check, overlapping=True)

    return find


def _occurrences(text: str, literal: str) -> Iterator[int]:
    """Every index where `literal` starts in `text`, overlapping ones included."""
    at = text.find(literal)
    while at != -1:
        yield at
        at = text.find(literal, at + 1)


_TELEGRAM_SECRET = re.compile(r":(?:[0-9A-Za-z_\-]{35}|AA[0-9A-Za-z_\-]{32})(?![\w\-])")
_WORD_OR_COLON = re.compile(r"[\w:]")


def _find_telegram_tokens(text: str) -> Iterator[Span]:
    """Telegram bot tokens, `<8-10 digit bot id>:<secret>`, not inside a longer token.

    The secret after the colon is searched first (a literal start, fast); the bot id is then
    read backwards, so the text is not tried as a digit run at every position.
    """
    for match in _TELEGRAM_SECRET.finditer(text):
        colon = match.start()
        start = colon
        while start > 0 and colon - start <= 10 and text[start - 1].isdecimal():
            start -= 1
        if 8 <= colon - start <= 10 and not (start > 0 and _WORD_OR_COLON.match(text, start - 1)):
            yield start, match.end()


_DISCORD_TAIL = re.compile(r"\.[a-zA-Z\d_\-]{6}\.[a-zA-Z\d_\-]{27,38}(?![\w\-])")
_DISCORD_HEAD_CHARS = frozenset(string.ascii_letters + "_-")
_WORD_OR_DASH = re.compile(r"[\w\-]")


def _find_discord_tokens(text: str) -> Iterator[Span]:
    """Discord bot tokens, `[MNO]` + 23-25 token characters, `.`, 6, `.`, 27-38, not inside a
    longer token.

    The part from the first dot on is searched first (a literal start, fast); the head is then
    read backwards: it is the whole run of token characters before that dot (a longer run
    would put a token character before the `[MNO]`), so each dot gives at most one token, and
    a token found ends before the head of the next (no token character follows a token).
    """
    match = _DISCORD_TAIL.search(text)
    while match is not None:
        dot = match.start()
        start = dot
        while start > 0 and dot - start <= 26:
            char = text[start - 1]
            if not (char in _DISCORD_HEAD_CHARS or char.isdecimal()):  # `\d` is any Nd digit
                break
            start -= 1
        if (
            24 <= dot - start <= 26
            and text[start] in "MNO"
            and not (start > 0 and _WORD_OR_DASH.match(text, start - 1))
        ):
            yield start, match.end()
            match = _DISCORD_TAIL.search(text, match.end())
        else:
            match = _DISCORD_TAIL.search(text, dot + 1)


def _not_placeholder(group: int | str = 0) -> Callable[[re.Match[str]], bool]:
    def check(match: re.Match[str]) -> bool:
        return not is_placeholder(match.group(group))

    return check


# ------------------------------------------------------------------------------ cloud providers


def _aws_key_id(match: re.Match[str]) -> bool:
    # AWS documents AKIAIOSFODNN7EXAMPLE; vendor sample keys are not secrets (docs/shield.md).
    return not match.group(0).endswith("EXAMPLE")


def _aws_secret(match: re.Match[str]) -> bool:
    value = match.group("value")
    return (
        "EXAMPLE" not in value
        and not is_placeholder(value)
        and shannon_entropy(value) >= 3.5
        and any(c.isdigit() or c in "/+" for c in value)
    )


_AWS_SECRET = (
    r"(?i:aws)[\w.\-]{0,30}?(?i:secret|key|pwd|pw|pass|token)[\w.\-]{0,20}[\"']?\s*"
    r"(?:=>|:=|=|:|,)\s*[\"'`]?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)


def _base64_private_key(match: re.Match[str]) -> bool:
    head = match.group(0)[:64]
    try:
        decoded = base64.b64decode(head[: len(head) // 4 * 4])
    except (binascii.Error, ValueError):
        return False
    return b"PRIVATE KEY" in decoded


_PEM_LABEL = r"[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?"
_PEM_BLOCK = (
    rf"-----BEGIN {_PEM_LABEL}-----(?:(?!-----BEGIN )[\s\S]){{0,20000}}?-----END {_PEM_LABEL}-----"
)
# A block whose END line is missing or cut off: the header and the base64 body that follows.
# It ends on a non-space character, so the whitespace after it stays out of the span.
_PEM_OPEN = rf"-----BEGIN {_PEM_LABEL}-----[A-Za-z0-9+/=\s\\\"'+:,.-]{{0,8000}}(?<!\s)"


# ------------------------------------------------------------------------------ generic assignments

_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "pass", "pw", "passphrase", "passwort"})
_SECRET_WORDS = frozenset({"secret", "token", "credential", "credentials", "secrete"})
_KEY_QUALIFIERS = frozenset(
    {"api", "access", "secret", "private", "auth", "signing", "encryption", "master", "app",
     "client", "account", "license", "subscription", "service", "consumer", "shared", "session"}
)  # fmt: skip
_JOINED_ENDINGS = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "secretkey", "privatekey",
    "accesskey", "authkey", "signingkey", "masterkey",
)  # fmt: skip
_DESCRIPTOR_WORDS = frozenset(
    {"label", "hint", "field", "input", "length", "len", "policy", "reset", "url", "uri", "path",
     "file", "name", "id", "prompt", "placeholder", "regex", "pattern", "min", "max", "count",
     "type", "expiry", "expires", "expiration", "age", "ttl", "required", "confirm", "change",
     "changed", "forgot", "strength", "rules", "error", "message", "msg", "text", "title", "env",
     "var", "header", "param", "column", "col", "dialog", "form", "button", "page", "view",
     "validator", "validation", "manager", "provider", "store", "helper", "class", "hash",
     "hashed", "digest", "salt", "format", "encoding", "version", "limit", "size", "enabled",
     "visible", "mode", "style", "icon", "key", "keys", "index", "list"}
)  # fmt: skip
_WORD_SPLIT = re.compile(r"[_.\-\s$@\[\]]+|(?<=[a-z0-9])(?=[A-Z])")
_ASSIGNMENT_KEYWORDS = ("pass", "pwd", "pw", "secret", "token", "key", "credential")
_ASSIGNMENT_KEYWORD = re.compile("(?i)" + "|".join(_ASSIGNMENT_KEYWORDS))
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$@")
_ASSIGNMENT = re.compile(
    r"""(?P<close>["'\]]*)[ \t]*(?:\[\d*\][ \t]*)?
    (?:
        (?P<op>===?|!==?|:=|=>|=|:)[ \t]*@?
      | (?P<is>[ \t]+(?:for[ \t][^\n"'=:]{1,40}?[ \t])?is[ \t]+)
      | (?P<call>\(|\.assign\(|[ \t]+(?=["'`]))
      | (?P<comma>,[ \t]*)
    )
    (?:
        (?P<q>["'`])(?P<quoted>(?:(?!(?P=q))[^\r\n\\]|\\.){1,256})(?P=q)
      | \\(?P<eq>["'])(?P<escaped>[^\\\r\n"']{1,256})\\(?P=eq)
      | (?P<bare>[^\s"'`,;]{1,256})
    )""",
    re.VERBOSE,
)
_REVERSED = re.compile(r"(?P<q>[\"'])(?P<quoted>[^\"'\r\n]{1,256})(?P=q)\s*(?:===?|!==?)\s*$")
_CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_PATH_OR_URL = re.compile(r"^(?:[a-z][a-z0-9+.\-]*://|/|\./|\.\./|~/|[A-Za-z]:\\)")


def _key_role(key: str) -> Literal["password", "secret"] | None:
    """Whether an assignment's key names a password, another secret, or neither.

    The key's last word decides (`db_password`, `api_key`, `clientSecret`); a password or
    secret word earlier in the key counts too (`password_super_secure`) unless the last word
    says the key describes the secret instead of holding it (`password_hint`, `passwordLabel`).
    """
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if not words:
        return None
    last = words[-1]
    if last in _PASSWORD_WORDS:
        return "password"
    if last in _SECRET_WORDS:
        return "secret"
    if last == "key" and len(words) > 1 and words[-2] in _KEY_QUALIFIERS:
        return "secret"
    if last.endswith(_JOINED_ENDINGS):
        return "password" if "pass" in last else "secret"
    if last in _DESCRIPTOR_WORDS or len(words) == 1:
        return None
    if any(w in _PASSWORD_WORDS for w in words[:-1]):
        return "password"
    if any(w in _SECRET_WORDS or w.endswith(_JOINED_ENDINGS) for w in words[:-1]):
        return "secret"  # `apikey_myservice`, `secret_prod`
    return None


_SNAKE_IDENTIFIER = re.compile(r"^[a-z]+(?:_[a-z]+)+$")
_CONCATENATION = ("+", ".", ",", ";")


def _value_is_secret(value: str, role: str, quoted: bool, op: str | None) -> bool:
    core = value.lstrip("\\")  # `\$_POST[...]` inside an escaped string is still code
    if is_placeholder(core) or _PATH_OR_URL.match(value) or _CONSTANT_NAME.match(value):
        return False
    if not any(c.isalnum() for c in value):
        return False  # punctuation only: a separator list, a mask
    stripped = value.strip()
    if quoted and (stripped.startswith(_CONCATENATION) or stripped.endswith("+")):
        return False  # code between two string literals: `"Password: " + get() + "`
    if _SNAKE_IDENTIFIER.match(value):
        return False  # a code identifier: `real_key`, `cms_user_password`
    if role == "password" and "pass" in value.lower() and (value[0] in "#." or "/" in value):
        return False  # a selector or route that names the password: `#add-password`
    has_digit_or_symbol = any(not c.isalpha() for c in value)
    if role == "password":
        if quoted:
            return len(value) >= 4
        # A bare word after "Password:" is usually a label in prose; after "=" it is config.
        return len(value) >= 6 and (has_digit_or_symbol or op == "=") and not value.isdigit()
    if len(value) < 8 or value.isdigit() or (" " in value and not quoted):
        return False
    if " " in stripped:
        return quoted and len(stripped) <= 64  # a quoted phrase may be a passphrase
    mixed = has_digit_or_symbol or (value.lower() != value and value.upper() != value)
    return mixed and shannon_entropy(value) >= 2.5 and not _has_alphabet_run(value)


_ALPHABET_RUN = 6


def _has_alphabet_run(value: str) -> bool:
    """True when `value` holds `abcdef`, `123456` or a longer run of consecutive characters.

    Keys and tokens are random: such a run marks a value typed by hand as a stand-in
    (`abcdefg12346+FJQCK`). Passwords are not tested this way: people do choose `abc123456`.
    """
    run = 1
    lowered = value.lower()
    for previous, current in itertools.pairwise(lowered):
        run = run + 1 if ord(current) == ord(previous) + 1 and current.isalnum() else 1
        if run >= _ALPHABET_RUN:
            return True
    return False


def _trim_closers(value: str) -> str:
    """`value` without trailing `)`, `]` or `}` that close nothing opened inside it."""
    while value and value[-1] in ")]}":
        opener = {")": "(", "]": "[", "}": "{"}[value[-1]]
        if value.count(opener) >= value.count(value[-1]):
            break
        value = value[:-1]
    return value


def _keyword_hits(text: str) -> list[Span]:
    """Spans of the assignment keywords in `text`, any case, in order (str.find: C speed)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lowercase is longer: offsets would shift
        return [m.span() for m in _ASSIGNMENT_KEYWORD.finditer(text)]
    hits: list[Span] = []
    for keyword in _ASSIGNMENT_KEYWORDS:
        at = lowered.find(keyword)
        while at != -1:
            hits.append((at, at + len(keyword)))
            at = lowered.find(keyword, at + 1)
    hits.sort()
    return hits


def _find_assignments(text: str) -> Iterator[Span]:
    """Values assigned to, compared with or said of password/secret/token/api-key names."""
    seen_key_start = -1
    for start, end in _keyword_hits(text):
        while start > 0 and text[start - 1] in _KEY_CHARS:
            start -= 1
        if start == seen_key_start:
            continue
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        key = text[start:end]
        role = _key_role(key)
        if role is None:
            continue
        seen_key_start = start
        match = _ASSIGNMENT.match(text, end)
        if match is not None:
            group = next(g for g in ("quoted", "escaped", "bare") if match.group(g) is not None)
            quoted = group != "bare"
            value = match.group(group)
            if not quoted:
                value = _trim_closers(value)
            op = match.group("op")
            if match.group("is") is not None and not quoted:
                continue
            if match.group("call") is not None and not quoted:
                continue
            value_start = match.start(group)
            if match.group("comma") is not None:
                # A quoted name, a comma, a quoted value: `("API_KEY", "…")`. Lists of field
                # names look the same (`["password", "email"]`), so the value must look random.
                if not (quoted and match.group("close")[:1] in ("'", '"')) or " " in value:
                    continue
                inner = value.strip('"')  # Gradle's `'"…"'`: a quoted string in a string
                value_start += value.index(inner) if inner else 0
                value, role = inner, "secret"
            if _value_is_secret(value, role, quoted, op):
                yield value_start, value_start + len(value)
                continue
        before = _REVERSED.search(text, max(0, start - 300), start)
        if before is not None and _value_is_secret(before.group("quoted"), role, True, "=="):
            yield before.span("quoted")


_CONNECTION_KEYS = re.compile(
    r"(?i)(?:server|data source|host|uid|user id|user|username|database|initial catalog|"
    r"provider|driver|dsn|port)\s*="
)


def _connection_string_password(match: re.Match[str]) -> bool:
    if is_marker(match.group("value")):
        return False
    text = match.string
    window = text[max(0, match.start() - 200) : match.end() + 200]
    return ";" in window and _CONNECTION_KEYS.search(window) is not None


_URL_CREDENTIALS = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]{0,30}://(?P<user>[^\s:/?#@'\"<>\[\]]{0,256}):"
    r"(?P<password>[^\s/?#'\"<>]{1,256})@(?=[\w\-\[%])"
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _find_url_passwords(text: str) -> Iterator[Span]:
    """The password of `scheme://user:password@host` URLs (placeholders excepted)."""
    at = text.find("://")
    while at != -1:
        start = at
        while start > 0 and at - start < 31 and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < at and not text[start].isalpha():
            start += 1
        match = _URL_CREDENTIALS.match(text, start) if start < at else None
        if match is not None:
            value = match.group("password")
            if not is_marker(value) and not (value.isdigit() and len(value) <= 5):
                yield match.span("password")
        at = text.find("://", at + 3)


# ------------------------------------------------------------------------------ personal data

_EMAIL_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-'"
)
_EMAIL_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24}|xn--[A-Za-z0-9\-]{2,30})(?![\w\-])"
)
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local", "internal"})
_FILE_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "ts", "css", "py", "md", "txt",
     "json", "yaml", "yml", "html", "htm", "pdf", "zip", "gz", "tar", "lock", "map", "wasm"}
)  # fmt: skip


def _find_emails(text: str) -> Iterator[Span]:
    """E-mail addresses, except reserved example domains (RFC 2606) and scp-style `git@host:`."""
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL_CHARS:
            start -= 1
        while start < at and not text[start].isalnum():
            start += 1
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if start < at and domain is not None:
            end = domain.end()
            host = domain.group(0).lower()
            tld = domain.group("tld").lower()
            scp_path = end < len(text) and text[end] == ":" and text[end + 1 : end + 2].isalpha()
            if not (
                scp_path
                or tld in _RESERVED_TLDS
                or tld in _FILE_EXTENSIONS
                or host.endswith(_RESERVED_DOMAINS)
                or text[start - 1 : start] in ("/", ":")
            ):
                yield start, end
        at = text.find("@", at + 1)


# A candidate is `+`, `(`, both or neither, then this; the pattern starts at a digit so that
# `re` skips to digits at C speed. It must not follow a token character (_PHONE_BEFORE).
_PHONE_DIGITS = re.compile(r"\d[\d ().\-]{5,22}\d(?![\w/@]|[.\-:]\d|\.\w)")
_PHONE_BEFORE = re.compile(r"[\w+/=.:#\-]")
_PHONE_CONTEXT = re.compile(
    r"(?i)(?:phone|tel|mobile|cell|call|fax|whatsapp|sms|contact|number|nummer|telefon|handy|"
    r"reach|text me|ring)[^\n\d]{0,24}$"
)
_DATE_LIKE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})\b")
_REGIONS_WITH_CONTEXT = ("US", "GB", "DE", "FR", "IN", "BR", "CN", "JP", "IL", "AU", "ES", "IT")


def _nanp_possible(candidate: str) -> bool:
    """False for digits that `phonenumbers` cannot accept as a valid number in region US.

    A cheap necessary condition, checked before the costly parse: a North American number has
    7 (Canada's 310-xxxx) or 10 digits after any leading `1`s (country code, trunk prefix), or
    dials out with `011`. `tests/shield/test_validators.py` checks it against `phonenumbers`.
    """
    digits = "".join(c for c in candidate if c.isdigit())
    return digits.startswith("011") or len(digits.lstrip("1")) in (7, 10)


def _phone_valid(candidate: str, context: Callable[[], bool]) -> bool:
    digits = sum(map(str.isdigit, candidate))
    if not 7 <= digits <= 15 or candidate.count("(") != candidate.count(")"):
        return False
    if _DATE_LIKE.match(candidate):
        return False
    if "." in candidate and len(re.findall(r"\d+", candidate)) != 3:
        return False  # versions, IP addresses, decimals
    if candidate.startswith("+"):
        regions: Sequence[str | None] = (None,)
    elif context():
        regions = _REGIONS_WITH_CONTEXT
    elif candidate.startswith("(") or any(c in candidate for c in " -.()"):
        if not _nanp_possible(candidate):
            return False  # most card-number and ISBN fragments end here, before a parse
        regions = ("US",)  # a formatted national number without a phone word nearby
    else:
        return False
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


_PHONE_CUTS = re.compile(r"(?<=\d)[ .\-]")
_PHONE_SEPARATOR = re.compile(r"[ ().\-]")


# Characters a phone candidate (`_PHONE_DIGITS`) may hold, as `1` in the ASCII text with
# every other character as `?` (so any non-ASCII character counts: it may be a digit).
_PHONE_CHARS = bytes(ord("1") if chr(b) in "0123456789 ().-?" else ord("0") for b in range(256))
_PHONE_RUN = b"1" * 7  # the shortest candidate


def _phone_chars(text: str) -> bytes:
    return text.encode("ascii", "replace").translate(_PHONE_CHARS)


def _phone_digits(text: str, chars: bytes, start: int) -> re.Match[str] | None:
    """`_PHONE_DIGITS.search(text, start)`, searched only where it can match.

    `chars` is `_phone_chars(text)`: a match lies in a run of 7 or more characters it may hold,
    so the pattern is searched only in such runs (it would be tried at every digit).
    """
    run = chars.find(_PHONE_RUN, start)
    while run != -1:
        run_end = chars.find(b"0", run)
        if run_end == -1:
            run_end = len(text)
        # Two characters past the run: the pattern's lookahead reads them.
        match = _PHONE_DIGITS.search(text, run, run_end + 2)
        if match is not None:
            return match
        run = chars.find(_PHONE_RUN, run_end)
    return None


def _phone_candidate(text: str, chars: bytes, start: int) -> tuple[int, int] | None:
    """The span of the next phone candidate at or after `start`: `+(`, `+` or `(`, then digits."""
    match = _phone_digits(text, chars, start)
    if match is None:
        return None
    at = match.start()
    if at > start and text[at - 1] == "(":
        at -= 1
    if at > start and text[at - 1] == "+":
        at -= 1
    return at, match.end()


def _find_phones(text: str) -> Iterator[Span]:
    """Phone numbers: international (+CC), formatted national, or digits after a phone word."""
    chars = _phone_chars(text)
    span = _phone_candidate(text, chars, 0)
    while span is not None:
        at, candidate_end = span
        candidate = text[at:candidate_end]

        def context(start: int = at) -> bool:
            return _PHONE_CONTEXT.search(text, max(0, start - 40), start) is not None

        if payment_card_valid(candidate):
            # A card number (the card detector's, which wins over phones): none of its
            # prefixes is tried as a phone, which saves a parse per prefix.
            span = _phone_candidate(text, chars, candidate_end)
            continue
        length = 0
        if not (at > 0 and _PHONE_BEFORE.match(text, at - 1)):
            # The greedy candidate may run into the next number: try it whole, then shorter
            # prefixes ending at a digit before a separator.
            cuts = [m.start() for m in _PHONE_CUTS.finditer(candidate)]
            for cut in [len(candidate), *reversed(cuts)]:
                prefix = candidate[:cut]
                if prefix.startswith("(") and ")" not in prefix:
                    continue
                if _phone_valid(prefix, context):
                    length = cut
                    break
        if length:
            yield at, at + length
            span = _phone_candidate(text, chars, at + length)
        else:
            # Retry from the next group: the candidate may have swallowed a neighbour's digits.
            nxt = _PHONE_SEPARATOR.search(candidate)
            retry = at + (nxt.end() if nxt else len(candidate))
            span = _phone_candidate(text, chars, retry)


def _check(validator: Callable[[str], bool]) -> Callable[[re.Match[str]], bool]:
    def check(match: re.Match[str]) -> bool:
        return validator(match.group(0))

    return check


# ------------------------------------------------------------------------------ the table

_SECRET_VALUE = r"[A-Za-z0-9+/_~.\-]{8,512}={0,2}"

DETECTORS: tuple[Detector, ...] = (
    # Vendor formats first: on overlapping spans, the earlier detector wins.
    Detector(
        "private_key",
        "secret",
        _regex(_PEM_BLOCK, _PEM_OPEN, r"PuTTY-User-Key-File-\d: [\s\S]{0,4000}?Private-MAC: \w+"),
        keywords=("PRIVATE KEY", "PuTTY-User-Key-File"),
    ),
    Detector(
        "private_key",
        "secret",
        _regex(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}={0,2}", check=_base64_private_key),
        keywords=("LS0tLS1CRUdJTi",),
        min_run=54,
    ),
    Detector(
        "aws_access_key",
        "secret",
        _regex(
            _bounded(AWSKeyDetector.denylist[0], _ALNUM_BEFORE, _ALNUM_AFTER), check=_aws_key_id
        ),
        keywords=("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        origin="detect-secrets",
        min_run=20,
    ),
    Detector(
        "aws_secret_key",
        "secret",
        _anchored(_AWS_SECRET, "aws", ignore_case=True, group="value", check=_aws_secret),
        keywords=("aws",),
        ignore_case=True,
        min_run=40,
    ),
    Detector(
        "gcp_api_key",
        "secret",
        _regex(rf"{_TOKEN_BEFORE}AIza[0-9A-Za-z_\-]{{35}}{_TOKEN_AFTER}"),
        keywords=("AIza",),
        min_run=39,
    ),
    Detector(
        "gcp_oauth_secret",
        "secret",
        _regex(rf"{_TOKEN_BEFORE}GOCSPX-[A-Za-z0-9_\-]{{28}}{_TOKEN_AFTER}"),
        keywords=("GOCSPX-",),
        min_run=35,
    ),
    Detector(
        "gcp_access_token",
        "secret",
        _regex(rf"{_TOKEN_BEFORE}ya29\.[0-9A-Za-z_\-]{{20,}}"),
        keywords=("ya29.",),
        min_run=25,
    ),
    Detector(
        "azure_storage_key",
        "secret",
        _anchored(
            r"(?:AccountKey|SharedAccessKey)\s*=\s*(?P<value>[A-Za-z0-9+/]{40,86}={0,2})(?![A-Za-z0-9+/=])",
            "AccountKey",
            "SharedAccessKey",
            group="value",
            check=_not_placeholder("value"),
        ),
        keywords=("AccountKey", "SharedAccessKey"),
        min_run=40,
    ),
    Detector(
        "azure_client_secret",
        "secret",
        _anchored(
            r"(?<![\w~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![\w~.\-])",
            "Q~",
            offset=4,
        ),
        keywords=("Q~",),
        min_run=37,
    ),
    Detector(
        "github_token",
        "secret",
        _regex(
            _bounded(GitHubTokenDetector.denylist[0]),
            rf"{_TOKEN_BEFORE}ghr_[A-Za-z0-9_]{{37,76}}{_TOKEN_AFTER}",
            rf"{_TOKEN_BEFORE}github_pat_[A-Za-z0-9_]{{82}}{_TOKEN_AFTER}",
        ),
        keywords=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        origin="detect-secrets",
        min_run=40,
    ),
    Detector(
        "gitlab_token",
        "secret",
        _regex(*(_bounded(p, _TOKEN_BEFORE, "") for p in GitLabTokenDetector.denylist)),
        keywords=(
            "glpat-",
            "gldt-",
            "glft-",
            "glsoat-",
            "glrt-",
            "GR1348941",
            "glcbt-",
            "glimt-",
            "glptt-",
            "glagent-",
            "gloas-",
        ),
        origin="detect-secrets",
        min_run=25,
    ),
    Detector(
        "npm_token",
        "secret",
        _regex(rf"{_TOKEN_BEFORE}npm_[A-Za-z0-9]{{36}}{_ALNUM_AFTER}"),
        keywords=("npm_",),
        min_run=36,
    ),
    Detector(
        "npm_token",
        "secret",
        _regex(
            r"//[^\s/][^\s]*/:_authToken=\s*(?P<value>[A-Za-z0-9_\-]{36,})",
            group="value",
            check=_not_placeholder("value"),
        ),
        keywords=("_authToken",),
        min_run=36,
    ),
    Detector(
        "pypi_token",
        "secret",
        _regex(*(_bounded(p) for p in PypiTokenDetector.denylist)),
        keywords=("pypi-AgE",),
        origin="detect-secrets",
        min_run=80,
    ),
    Detector(
        "dockerhub_token",
        "secret",
        _regex(rf"{_TOKEN_BEFORE}dckr_pat_[A-Za-z0-9_\-]{{27}}{_TOKEN_AFTER}"),
        keywords=("dckr_pat_",),
        min_run=36,
    ),
    Detector(
        "slack_webhook",
        "secret",
        _regex(SlackDetector.denylist[1].pattern),
        keywords=("hooks.slack.com",),
        origin="detect-secrets",
        min_run=40,
    ),
    Detector(
        "slack_token",
        "secret",
        _regex(
            rf"{_TOKEN_BEFORE}xox[abposre]-[0-9A-Za-z\-]{{10,250}}",
            rf"{_TOKEN_BEFORE}xapp-[0-9A-Za-z\-/]{{20,250}}",
        ),
        keywords=("xox", "xapp-"),
        min_run=15,
    ),
    Detector(
        "discord_webhook",
        "secret",
        _regex(
            r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_\-]{60,68}"
        ),
        keywords=("discord",),
        min_run=90,
    ),
    Detector(
        "discord_token",
        "secret",
        _find_discord_tokens,
        min_run=59,
    ),
    Detector(
        "teams_webhook",
        "secret",
        _regex(
            r"https://(?:outlook\.office(?:365)?\.com|[\w\-]+\.webhook\.office\.com)/webhook(?:b2)?/"
            r"[0-9a-f\-]{36}@[0-9a-f\-]{36}/IncomingWebhook/[0-9a-f]{32}/[0-9a-f\-]{36}"
        ),
        keywords=("IncomingWebhook",),
        min_run=100,
    ),
    Detector(
        "telegram_bot_token",
        "secret",
        _find_telegram_tokens,
        keywords=(":AA",),
        min_run=43,
    ),
    Detector(
        "stripe_key",
        "secret",
        _anchored(
            rf"{_TOKEN_BEFORE}(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{{24,247}}{_TOKEN_AFTER}",
            "k_live_",
            "k_test_",
            offset=1,
        ),
        keywords=("k_live_", "k_test_"),
        min_run=32,
    ),
    Detector(
        "square_token",
        "secret",
        _regex(
            rf"{_TOKEN_BEFORE}sq0atp-[0-9A-Za-z\-_]{{22}}{_TOKEN_AFTER}",
            _bounded(SquareOAuthDetector.denylist[0]),
        ),
        keywords=("sq0atp-", "sq0csp-"),
        min_run=29,
    ),
    Detector(
        "braintree_token",
        "secret",
        _regex(r"access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}"),
        keywords=("access_token$production$",),
        min_run=66,
    ),
    Detector(
        "twilio_key",
        "secret",
        _anchored(rf"{_ALNUM_BEFORE}(?:AC|SK)[0-9a-f]{{32}}{_ALNUM_AFTER}", "AC", "SK"),
        min_run=34,
    ),
    Detector(
        "sendgrid_key",
        "secret",
        _regex(_bounded(SendGridDetector.denylist[0])),
        keywords=("SG.",),
        origin="detect-secrets",
        min_run=69,
    ),
    Detector(
        "mailchimp_key",
        "secret",
        _anchored(rf"{_ALNUM_BEFORE}[0-9a-f]{{32}}-us\d{{1,2}}{_ALNUM_AFTER}", "-us", offset=32),
        keywords=("-us",),
        min_run=36,
    ),
    Detector(
        "openai_key",
        "secret",
        _regex(
            _bounded(OpenAIDetector.denylist[0]),
            rf"{_TOKEN_BEFORE}sk-[A-Za-z0-9]{{48}}{_TOKEN_AFTER}",
        ),
        keywords=("sk-",),
        origin="detect-secrets",
        min_run=51,
    ),
    Detector(
        "anthropic_key",
        "secret",
        _regex(
            rf"{_TOKEN_BEFORE}sk-ant-[a-z]{{3,6}}\d{{2}}-[A-Za-z0-9_\-]{{80,120}}{_TOKEN_AFTER}"
        ),
        keywords=("sk-ant-",),
        min_run=93,
    ),
    Detector(
        "huggingface_token",
        "secret",
        _regex(rf"(?<![A-Za-z0-9_])hf_[A-Za-z]{{34}}{_ALNUM_AFTER}"),
        keywords=("hf_",),
        min_run=37,
    ),
    Detector(
        "jwt",
        "secret",
        _regex(
            rf"{_TOKEN_BEFORE}eyJ[A-Za-z0-9_\-]{{8,}}={{0,2}}\.[A-Za-z0-9_\-]{{4,}}={{0,2}}"
            rf"(?:\.[A-Za-z0-9_\-+/]*={{0,2}})?",
            check=_check(jwt_valid),
        ),
        keywords=("eyJ",),
        min_run=16,
    ),
    # Credentials inside URLs, headers and connection strings.
    Detector(
        "url_password",
        "secret",
        _find_url_passwords,
        keywords=("://",),
    ),
    Detector(
        "http_auth_header",
        "secret",
        _anchored(
            rf"(?i:authorization)\s*[:=]\s*[\"']?(?i:basic|bearer|token)\s+(?P<value>{_SECRET_VALUE})",
            "authorization",
            ignore_case=True,
            group="value",
            check=_not_placeholder("value"),
        ),
        keywords=("authorization",),
        ignore_case=True,
    ),
    Detector(
        "connection_string",
        "secret",
        _anchored(
            # `Password=x`, `Password= x`, `Password =x`; not code's `password = x`.
            r"(?i)(?<![\w])(?:password|pwd)(?:=\s*|[ \t]+=(?=\S))"
            r"(?P<value>[^;\"'\s<>{}][^;\"'<>\r\n]{0,127}?)\s*(?=;|\"|'|$)",
            "password",
            "pwd",
            ignore_case=True,
            group="value",
            check=_connection_string_password,
            flags=re.MULTILINE,
        ),
        keywords=("password", "pwd"),
        ignore_case=True,
    ),
    Detector(
        "connection_string",
        "secret",
        _anchored(
            r"(?i)[?&](?:password|pwd|passwd|pass)=(?P<value>[^&\s#'\"]{1,256})",
            "pass",
            "pwd=",
            offset=1,
            ignore_case=True,
            group="value",
            check=_connection_string_password,
        ),
        keywords=("pass", "pwd="),
        ignore_case=True,
    ),
    Detector(
        "generic_secret",
        "secret",
        _find_assignments,
        keywords=("pass", "pwd", "pw", "secret", "token", "key", "credential"),
        ignore_case=True,
        assigned=True,
    ),
    # Personal data.
    Detector(
        "payment_card",
        "pii",
        _shaped(
            # The lookahead drops digits of short numbers and hex tokens before the group runs.
            r"(?<![0-9\-.])(?=[0-9 \-]{12})(?:[ \-]?[0-9]){12,19}(?![0-9\-]|\.[0-9])",
            # A card number's first group has four digits (payment_card_valid): only runs of
            # four or more digits are tried, at their start.
            b"9999+",
            check=_check(payment_card_valid),
        ),
        min_digits=12,
    ),
    Detector(
        "iban",
        "pii",
        _shaped(
            rf"{_ALNUM_BEFORE}[A-Z]{{2}}[0-9]{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}"
            rf"(?: ?[A-Z0-9]{{1,4}})?{_ALNUM_AFTER}",
            b"AA99",  # the same places overlapping cannot start: `A` is no `9`
            check=_check(iban_valid),
        ),
        shape="AA99",
    ),
    Detector("email", "pii", _find_emails, keywords=("@",)),
    Detector("phone", "pii", _find_phones, min_digits=7),
)


_MASK_CHARACTERS = frozenset("xX*0#._-")


def _low_diversity(text: str, start: int, end: int) -> bool:
    """True for a token-shaped span filled with a mask character: `ghp_xxxx…`, `xoxb-0000…`.

    A fill of another character (`AKIAZZZZ…`) keeps the vendor's format and stays a finding.
    """
    span = text[start:end]
    distinct = len(set(span))
    if not (distinct <= 3 or (end - start >= 16 and distinct <= 6)):
        return False
    return max(set(span), key=span.count) in _MASK_CHARACTERS


def kinds(detectors: Iterable[Detector] = DETECTORS) -> dict[str, Category]:
    """Every detector kind and its category."""
    return {d.kind: d.category for d in detectors}


_WHITESPACE = b" \t\n\r\f\v"
# Byte tables for the gates: one maps each UTF-8 byte to its character class (A, a, 9, space or
# "."; bytes of non-ASCII characters to 9, so they can only make a gate pass), the other to
# "x" or a space, so that a run of non-whitespace characters is a run of x.
_CLASSES = bytes(
    ord("A") if 65 <= b <= 90
    else ord("a") if 97 <= b <= 122
    else ord("9") if 48 <= b <= 57 or b >= 128
    else ord(" ") if b in _WHITESPACE
    else ord(".")
    for b in range(256)
)  # fmt: skip
_RUNS = bytes(ord(" ") if b in _WHITESPACE else ord("x") for b in range(256))
_LONG_RUN = 15
"""Detectors whose `min_run` is at least this are skipped together on texts of short words."""
_LONG_RUN_BYTES = b"x" * _LONG_RUN


Syntax = Literal["text", "code", "c"]
"""What a scanned text is, for the `assigned` detectors (`password = value`):

- `text`: prose, notes, configuration, shell: any value counts, quoted or not (facts are text);
- `code`: source code where a bare name is a variable (Python, JavaScript, Java, Ruby, ...):
  only a quoted string literal ('…', "…", `…`) is a value;
- `c`: the C family, where '…' is a character literal: only a "…" string literal is a value.
"""
SYNTAXES: tuple[Syntax, ...] = ("text", "code", "c")
_STRING_QUOTES: dict[Syntax, frozenset[str] | None] = {
    "text": None,
    "code": frozenset("\"'`"),
    "c": frozenset('"'),
}


class _Entry(NamedTuple):
    priority: int
    detector: Detector
    min_digits: int
    min_run: int
    shape: bytes
    secret: bool


class Scanner:
    """Scans texts with a fixed tuple of detectors, gating each by its cheap tests first.

    Most texts (prose, notes, decisions) hold no secret: for them the gates reject nearly every
    detector after two byte translations and a few substring tests, before any pattern runs.
    """

    __slots__ = ("_any_keyword", "_gated", "_long", "_without_keywords", "detectors")

    def __init__(self, detectors: Sequence[Detector] = DETECTORS) -> None:
        self.detectors = tuple(detectors)
        entries = [
            _Entry(p, d, d.min_digits, d.min_run, d.shape.encode(), d.category == "secret")
            for p, d in enumerate(self.detectors)
        ]
        self._long = tuple(e for e in entries if e.min_run >= _LONG_RUN)
        self._gated = tuple(e for e in entries if e.min_run < _LONG_RUN)
        # The gated group's keyword test in one pass per text: when no keyword of any of its
        # detectors occurs, only the detectors without keywords can find anything.
        self._without_keywords = tuple(e for e in self._gated if not e.detector.keywords)
        self._any_keyword = (
            _covering_keywords(d for d in (e.detector for e in self._gated) if not d.ignore_case),
            _covering_keywords(d for d in (e.detector for e in self._gated) if d.ignore_case),
        )

    def scan(self, text: str, syntax: Syntax = "text") -> tuple[Finding, ...]:
        """Return the findings in `text`, ordered by position, with no two spans overlapping.

        Where spans of several detectors overlap, the detector earlier in `detectors` wins
        (vendor formats before generic assignments before personal data), then the longer span.
        `syntax` says what `text` is (`Syntax`): in source code, an `assigned` detector's value
        counts only inside a string literal.
        """
        quotes = _STRING_QUOTES[syntax]
        if not text:
            return ()
        raw = text.encode("utf-8", "surrogatepass")
        classes = raw.translate(_CLASSES)
        digits = classes.count(b"9")
        runs = raw.translate(_RUNS)
        longest = 0
        if _LONG_RUN_BYTES in runs:
            longest = max(map(len, runs.split()))
        lowered: str | None = None
        gated = self._gated
        exact, folded = self._any_keyword
        if not _holds_any(text, exact):
            if folded:
                lowered = text.lower()
            if not (folded and _holds_any(lowered or "", folded)):
                gated = self._without_keywords
        candidates: list[tuple[int, int, int, Detector]] = []
        for group in (gated, self._long) if longest else (gated,):
            for priority, detector, min_digits, min_run, shape, secret in group:
                if min_digits > digits or min_run > longest or (shape and shape not in classes):
                    continue
                if detector.keywords:
                    if detector.ignore_case:
                        lowered = text.lower() if lowered is None else lowered
                        haystack = lowered
                    else:
                        haystack = text
                    for keyword in detector.keywords:
                        if keyword in haystack:
                            break
                    else:
                        continue
                for start, end in detector.find(text):
                    if secret and _low_diversity(text, start, end):
                        continue  # "xxxx…", "0000…": a placeholder in a token's shape
                    if (
                        quotes is not None
                        and detector.assigned
                        and text[start - 1 : start] not in quotes
                    ):
                        continue  # in source code a bare value is a name, not a secret
                    candidates.append((priority, start, -end, detector))
        if not candidates:
            return ()
        return _resolve(candidates)


def _covering_keywords(detectors: Iterable[Detector]) -> tuple[str, ...]:
    """The fewest keywords of `detectors` such that text holding any of their keywords holds
    one of these: a keyword holding another ("password" holds "pass") is left out.

    Keywords of `ignore_case` detectors are looked for in the lowered text, as `scan` does. A
    substring test per keyword (C `find`) is several times faster than one alternation pattern.
    """
    words = sorted({k for d in detectors for k in d.keywords}, key=len)
    kept: list[str] = []
    for word in words:
        if not any(shorter in word for shorter in kept):
            kept.append(word)
    return tuple(kept)


def _holds_any(text: str, keywords: tuple[str, ...]) -> bool:
    for keyword in keywords:  # noqa: SIM110 - a loop: no generator object per text
        if keyword in text:
            return True
    return False


def _resolve(candidates: list[tuple[int, int, int, Detector]]) -> tuple[Finding, ...]:
    """Keep, by priority then start then length, each candidate span that overlaps no kept one.

    Kept characters are marked in a bytearray as long as the last span's end, so each test is
    one C-speed `find` over the candidate's own span: linear in the text, where a sorted list
    of kept spans would make a large text with many findings quadratic.
    """
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    taken = bytearray(max(-c[2] for c in candidates))
    kept: list[Finding] = []
    for _, start, negative_end, detector in candidates:
        end = -negative_end
        if taken.find(1, start, end) != -1:
            continue  # overlaps a kept span
        taken[start:end] = b"\x01" * (end - start)
        kept.append(Finding(detector.kind, detector.category, start, end))
    kept.sort(key=lambda f: f.start)
    return tuple(kept)


_DEFAULT_SCANNER = Scanner(DETECTORS)


def scan(
    text: str, detectors: Sequence[Detector] = DETECTORS, *, syntax: Syntax = "text"
) -> tuple[Finding, ...]:
    """Return the findings in `text`, ordered by position, with no two spans overlapping.

    Where spans of several detectors overlap, the detector earlier in `detectors` wins (vendor
    formats before generic assignments before personal data), then the longer span. `syntax`:
    see `Syntax`. To scan many texts with other detectors, build a `Scanner` once.
    """
    scanner = _DEFAULT_SCANNER if detectors is DETECTORS else Scanner(detectors)
    return scanner.scan(text, syntax)

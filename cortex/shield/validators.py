"""Pure checks that turn a pattern match into a finding: checksums, entropy, placeholders.

Each function takes the matched text and returns a bool; none of them keeps state or does I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

__all__ = [
    "iban_valid",
    "is_marker",
    "is_placeholder",
    "jwt_valid",
    "luhn_valid",
    "payment_card_valid",
    "shannon_entropy",
]

# ISO 13616 IBAN lengths by country (SWIFT IBAN registry); a country not listed is refused.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

# Card brands as (prefixes, allowed lengths): an IIN prefix alone is too weak, a Luhn check
# alone passes one random number in ten; together with the brand's lengths they are specific.
_CARD_BRANDS: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = (
    (("4",), frozenset({13, 16, 19})),  # Visa
    (tuple(str(n) for n in range(51, 56)) + tuple(str(n) for n in range(2221, 2721)),
     frozenset({16})),  # Mastercard
    (("34", "37"), frozenset({15})),  # American Express
    (("6011", "65", *(str(n) for n in range(644, 650))), frozenset({16, 19})),  # Discover
    (tuple(str(n) for n in range(3528, 3590)), frozenset({16, 17, 18, 19})),  # JCB
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"),
     frozenset({14, 16, 19})),  # Diners Club
    (("62",), frozenset({16, 17, 18, 19})),  # UnionPay
    (("50", "56", "57", "58", "6"), frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (("1",), frozenset({15})),  # UATP
)  # fmt: skip
_CARD_LENGTHS = frozenset(n for _, lengths in _CARD_BRANDS for n in lengths)

_PLACEHOLDER_WORDS = (
    "example", "sample", "dummy", "placeholder", "changeme", "change_me", "change-me",
    "redacted", "your", "fake", "xxxx", "****", "todo", "replace", "insert", "enter_",
)  # fmt: skip
# Words that also occur by chance inside random tokens: there they mark no placeholder.
_WEAK_WORDS = frozenset({"your", "fake", "todo", "insert", "replace"})
_TEMPLATE_STARTS = ("<", "${", "{{", "%(", "#{", "$(", "[REDACTED:", "&lt;")
_PLACEHOLDER_EXACT = frozenset(
    {
        "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "key",
        "none", "null", "nil", "true", "false", "undefined", "empty", "string", "str",
        "test", "testing", "n/a",
    }
)  # fmt: skip
_CODE_VALUE = re.compile(
    r"""^(?:
        \$[A-Za-z_{(]            # shell / template variables
      | %[A-Za-z_]+%             # Windows variables
      | (?:process\.env|os\.environ|os\.getenv|env|ENV|getenv|config|settings)[.\[(]
      | (?:request|params|self|this)[.\[(]
      | [A-Za-z_][\w.]*\(        # a function call
      | [A-Za-z_]\w*\.[A-Za-z_]\w*(?:\.\w+)*$   # attribute access: a.b.c
    )""",
    re.VERBOSE,
)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check of ISO/IEC 7812."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def payment_card_valid(text: str) -> bool:
    """True for a card number (separators allowed) of a known brand, length and Luhn digit."""
    digits = text.replace(" ", "").replace("-", "")
    if (
        len(digits) not in _CARD_LENGTHS
        or not digits.isdigit()
        or not any(
            len(digits) in lengths and digits.startswith(prefixes)
            for prefixes, lengths in _CARD_BRANDS
        )
    ):
        return False  # the cheap tests first: most candidates are no card of any brand
    if len(set(digits)) < 2 or not luhn_valid(digits):
        return False
    return text == digits or _card_grouping_plausible(text)


def _card_grouping_plausible(text: str) -> bool:
    groups = re.split(r"[ -]", text)
    if len({sep for sep in text if sep in " -"}) > 1:
        return False
    sizes = [len(g) for g in groups]
    # 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners), 4-4-4-1..4
    return sizes[0] == 4 and all(3 <= s <= 6 for s in sizes[1:-1]) and 1 <= sizes[-1] <= 6


def iban_valid(text: str) -> bool:
    """True for an IBAN (spaces allowed) with its country's length and a valid ISO 7064 mod 97."""
    compact = text.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    if not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def shannon_entropy(text: str) -> float:
    """Shannon entropy of the text's characters in bits per character (0 for an empty text)."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def is_marker(value: str) -> bool:
    """True for values that mark where a secret goes: templates, references, masks, code.

    The narrower test of `is_placeholder`, for places where a plain word is a real (if weak)
    password (`postgres://app:secret@db`, `Password=secret;`).
    """
    stripped = value.strip().strip("\"'`")
    if not stripped or stripped.startswith(_TEMPLATE_STARTS) or len(set(stripped.lower())) <= 2:
        return True
    lowered = stripped.lower()
    if any(word in lowered for word in ("xxxx", "****", "<", ">", "example", "changeme", "your")):
        return True
    return bool(_CODE_VALUE.match(stripped))


def is_placeholder(value: str) -> bool:
    """True for values that stand for a secret instead of being one.

    Template and environment references (`${DB_PASSWORD}`, `{{ token }}`, `os.environ[...]`),
    code (`get_password()`, `config.secret`), markers (`<your key>`, `****`, `xxxx`,
    `[REDACTED:kind]`), vendor sample words (`example`, `dummy`, `changeme`) and words that only
    name the thing (`password`, `null`).
    """
    stripped = value.strip().strip("\"'`")
    lowered = stripped.lower()
    if not stripped or lowered in _PLACEHOLDER_EXACT:
        return True
    if stripped.startswith(_TEMPLATE_STARTS) or len(set(lowered)) <= 2:
        return True  # "xxxxxxxx", "********", "#####", "abababab"
    words = [word for word in _PLACEHOLDER_WORDS if word in lowered]
    if words and not (set(words) <= _WEAK_WORDS and _random_beyond(lowered, words)):
        return True
    return bool(_CODE_VALUE.match(stripped))


def _random_beyond(lowered: str, words: list[str]) -> bool:
    """True when `lowered` without `words` is still a long random token (a real key that
    happens to contain `fake` or `your` is no placeholder)."""
    rest = lowered
    for word in words:
        rest = rest.replace(word, "")
    rest = "".join(c for c in rest if c.isalnum())
    return len(rest) >= 24 and shannon_entropy(rest) >= 4.0


def _b64url_decode(part: str) -> bytes | None:
    padded = part + "=" * (-len(part) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError):
        return None


def _json_object(raw: bytes | None) -> dict[str, object] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


_JOSE_HEADER_STARTS = (b'{"alg":', b'{"typ":', b'{"enc":', b'{"kid":')


def jwt_valid(token: str) -> bool:
    """True when the token's payload is a base64url JSON object and its header a JOSE header.

    The header (RFC 7515 §4) is a JSON object naming `alg`, `typ` or `enc`. A whole header
    (it opens like a JOSE header and closes with `}`) with a damaged byte inside (changed in a
    copied token) still counts, as the payload shows it is a token; a cut-off one does not.
    """
    parts = token.split(".")
    if len(parts) < 2:
        return False
    raw_header = _b64url_decode(parts[0])
    header = _json_object(raw_header)
    if header is not None:
        if not ({"alg", "typ", "enc"} & header.keys()):
            return False
    elif not (
        raw_header is not None
        and raw_header.startswith(_JOSE_HEADER_STARTS)
        and raw_header.endswith(b"}")
    ):
        return False
    return _json_object(_b64url_decode(parts[1])) is not None

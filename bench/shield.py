"""Privacy shield benchmark: detection quality on labelled cases, and scan throughput.

1. Fixture set (tests/data/shield/cases.jsonl, made by its generate.py): recall (a positive
   counts when every labelled span is overlapped by a finding of its kind), false-positive rate
   (a negative with any finding), precision over cases, and recall per kind.
2. Public labelled cases in ../shared/data/secrets/ (Nosey Parker rule examples, detect-secrets
   plugin tests, Presidio recognizer tests), read in place and never copied. Their labels are per
   detector, so each rule or recognizer the shield covers is mapped to the shield kinds that
   answer for it: recall = label-1 cases where one of those kinds fires; FPR = label-0 cases
   where one fires. Rules the shield does not cover are left out (listed in the JSON).
3. Throughput in MB/s (UTF-8 bytes): `scan` over one large text (as `cortex scan` does) built
   from the fixture cases, which are dense with secrets, and per fact over synthetic
   agent-memory facts (as the write path does); best of 3 runs each, the median beside it.
4. `Shield.screen` per fact (what `Cortex._screen` calls on every write), in microseconds per
   fact, with the scanner's gates and without them (every detector runs), in the same run.

    .venv/bin/python bench/shield.py --quick     # ~1 MB per throughput phase
    .venv/bin/python bench/shield.py             # ~8 MB per throughput phase
    .venv/bin/python bench/shield.py --show-misses   # also log each public miss and false positive

detect-secrets runs its keyword cases as files of a language (C, C++, languages that quote their
strings, configuration); each such case is scanned with the matching `--syntax` (c, code, text),
as `cortex scan FILE` does for such a file; every other case as text. The figures with every
case scanned as text (as a fact is) are reported too ("as text"). Public negatives whose label
depends on the file's language, and negatives holding a value their own rule labels a secret in
a positive (docs/shield.md), are also counted apart: the FPR is reported with and without each.

Targets: recall >= 0.95, FPR <= 1 %, >= 5 MB/s. Progress on stderr; one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import _common as c

from cortex.model import FactDraft
from cortex.shield import DETECTORS, Finding, Shield, Syntax, scan

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "shield" / "cases.jsonl"
PUBLIC = ROOT.parent / "shared" / "data" / "secrets"

TARGET_RECALL = 0.95
TARGET_FPR = 0.01
TARGET_MB_S = 5.0
TARGET_SCREEN_US = 10.0  # per ~200-byte fact: the shield's share of the ingest budget

_GENERIC = {"generic_secret", "connection_string", "url_password", "http_auth_header"}
# Nosey Parker rule id -> shield kinds that answer for it.
NOSEY_PARKER: dict[str, set[str]] = {
    "np.anthropic.1": {"anthropic_key"},
    "np.aws.1": {"aws_access_key"},
    "np.aws.2": {"aws_secret_key"},
    "np.azure.1": {"azure_storage_key"},
    "np.dockerhub.1": {"dockerhub_token"},
    "np.generic.1": _GENERIC,
    "np.generic.2": _GENERIC,
    "np.generic.5": _GENERIC,
    "np.generic.6": _GENERIC,
    "np.github.1": {"github_token"},
    "np.github.2": {"github_token"},
    "np.github.3": {"github_token"},
    "np.github.4": {"github_token"},
    "np.github.7": {"github_token"},
    "np.gitlab.1": {"gitlab_token"},
    "np.gitlab.2": {"gitlab_token"},
    "np.gitlab.3": {"gitlab_token"},
    "np.google.2": {"gcp_oauth_secret"},
    "np.google.4": {"gcp_access_token"},
    "np.google.5": {"gcp_api_key"},
    "np.http.1": {"http_auth_header"},
    "np.http.2": {"http_auth_header"},
    "np.huggingface.1": {"huggingface_token"},
    "np.jwt.1": {"jwt"},
    "np.mailchimp.1": {"mailchimp_key"},
    "np.mongodb.1": {"url_password"},
    "np.msteams.1": {"teams_webhook"},
    "np.npm.1": {"npm_token"},
    "np.odbc.1": {"connection_string", "generic_secret"},
    "np.openai.1": {"openai_key"},
    "np.pem.1": {"private_key"},
    "np.pem.2": {"private_key"},
    "np.postgres.1": {"url_password"},
    "np.pypi.1": {"pypi_token"},
    "np.sendgrid.1": {"sendgrid_key"},
    "np.slack.2": {"slack_token"},
    "np.slack.3": {"slack_webhook"},
    "np.slack.4": {"slack_token"},
    "np.slack.5": {"slack_token"},
    "np.slack.6": {"slack_token"},
    "np.square.1": {"square_token"},
    "np.square.2": {"square_token"},
    "np.stripe.1": {"stripe_key"},
    "np.stripe.2": {"stripe_key"},
    "np.telegram.1": {"telegram_bot_token"},
    "np.twilio.1": {"twilio_key"},
}
# detect-secrets plugin -> shield kinds.
DETECT_SECRETS: dict[str, set[str]] = {
    "aws_key": {"aws_access_key", "aws_secret_key"},
    "azure_storage_key": {"azure_storage_key"},
    "basic_auth": {"url_password"},
    "discord": {"discord_token"},
    "github_token": {"github_token"},
    "gitlab_token": {"gitlab_token"},
    "jwt": {"jwt"},
    "keyword": {"generic_secret"},
    "mailchimp_key": {"mailchimp_key"},
    "npm": {"npm_token"},
    "openai": {"openai_key"},
    "pypi_token": {"pypi_token"},
    "sendgrid": {"sendgrid_key"},
    "stripe_key": {"stripe_key"},
    "telegram_token": {"telegram_bot_token"},
    "twilio": {"twilio_key"},
}
# Presidio recognizer test file -> shield kinds.
PRESIDIO: dict[str, set[str]] = {
    "test_email_recognizer.py": {"email"},
    "test_phone_recognizer.py": {"phone"},
    "test_credit_card_recognizer.py": {"payment_card"},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~1 MB per throughput phase")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the synthetic facts")
    parser.add_argument(
        "--public",
        type=Path,
        default=PUBLIC,
        metavar="DIR",
        help="folder of the labelled public cases (default: ../shared/data/secrets beside the"
        " repository); when it does not exist, that part is skipped and said so",
    )
    parser.add_argument(
        "--show-misses",
        action="store_true",
        help="log every missed public positive and every public false positive (stderr)",
    )
    return parser.parse_args()


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def fixture_quality() -> dict[str, Any]:
    """Recall, FPR and precision on the fixture set, overall and recall per kind."""
    cases = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    found_by_kind: Counter[str] = Counter()
    total_by_kind: Counter[str] = Counter()
    families_with_fp: Counter[str] = Counter()
    tp = fp = negatives = 0
    for case in cases:
        findings = scan(case["text"])
        if case["label"]:
            total_by_kind[case["kind"]] += 1
            if all(_covered(findings, s, e, k) for s, e, k in case["spans"]):
                found_by_kind[case["kind"]] += 1
                tp += 1
        else:
            negatives += 1
            if findings:
                fp += 1
                families_with_fp[case["family"]] += 1
    positives = sum(total_by_kind.values())
    return {
        "cases": len(cases),
        "positives": positives,
        "negatives": negatives,
        "kinds": len(total_by_kind),
        "recall": round(_ratio(tp, positives), 4),
        "fpr": round(_ratio(fp, negatives), 4),
        "precision": round(_ratio(tp, tp + fp), 4),
        "recall_by_kind": {
            k: round(_ratio(found_by_kind[k], n), 4) for k, n in sorted(total_by_kind.items())
        },
        "false_positives_by_family": dict(families_with_fp),
    }


def _covered(findings: Iterable[Finding], start: int, end: int, kind: str) -> bool:
    return any(f.kind == kind and f.start < end and start < f.end for f in findings)


class PublicCase(NamedTuple):
    """One labelled public case and the shield kinds that answer for its rule (None: none)."""

    source: str
    rule: str
    kinds: set[str] | None
    label: int
    text: str
    context: str | None  # detect-secrets keyword cases: the language list the case runs under
    secret: str | None  # detect-secrets keyword positives: the value the plugin must extract

    @property
    def syntax(self) -> Syntax:
        """What the case's own test says the text is (`cortex scan --syntax`); text if silent."""
        return _SYNTAX_OF_CONTEXT.get(self.context or "", "text")


# detect-secrets runs its keyword cases as files of these languages: C-family files (only a
# "..." string holds a value) and languages whose values must be quoted; the rest as text.
_SYNTAX_OF_CONTEXT: dict[str, Syntax] = {
    "COMMON_C_TEST_CASES": "c",
    "C_PLUS_PLUS_TEST_CASES": "c",
    "QUOTES_REQUIRED_TEST_CASES": "code",
}


def _public_rows(folder: Path) -> Iterable[PublicCase]:
    """Every public case, read in place from `folder`."""
    for line in (folder / "noseyparker_rules_examples.jsonl").read_text().splitlines():
        row = json.loads(line)
        rule = row["rule_id"]
        kinds = NOSEY_PARKER.get(rule)
        yield PublicCase("noseyparker", rule, kinds, row["label"], row["text"], None, None)
    for line in (folder / "detect_secrets_plugin_cases.jsonl").read_text().splitlines():
        row = json.loads(line)
        rule = row["detector"]
        yield PublicCase(
            "detect-secrets",
            rule,
            DETECT_SECRETS.get(rule),
            row["label"],
            row["text"],
            row.get("test"),
            row.get("secret"),
        )
    for line in (folder / "presidio_pii_recognizer_cases.jsonl").read_text().splitlines():
        row = json.loads(line)
        rule = row["file"].rsplit("/", 1)[-1]
        yield PublicCase(
            "presidio", rule, PRESIDIO.get(rule), row["label"], row["text"], None, None
        )


_QUOTING = re.compile(r"[\"'`\s;]")


def _file_type_dependent(cases: list[PublicCase]) -> set[int]:
    """Indexes of negatives whose label depends on the language of the file they came from.

    Two mechanical tests, no hand-picking: (1) the same source labels the same text positive
    when written with other quotes (`password = 'x'` negative, `password = "x"` positive:
    whether single quotes or none make a string depends on the language); (2) a detect-secrets
    keyword negative from one language list holds the very value that a positive of another
    language list extracts (`passwd = m{{h}o)p…;` is code in C, a secret in a config file).
    A text scan has no file type, so it cannot tell these apart.
    """
    positive_forms: dict[tuple[str, str], set[str]] = defaultdict(set)
    keyword_values: dict[str, set[str | None]] = defaultdict(set)
    for case in cases:
        if case.kinds is None or not case.label:
            continue
        positive_forms[(case.source, _QUOTING.sub("", case.text))] |= case.kinds
        if case.rule == "keyword" and case.secret:
            keyword_values[case.secret].add(case.context)
    dependent: set[int] = set()
    for index, case in enumerate(cases):
        if case.kinds is None or case.label:
            continue
        same_text_positive = positive_forms[(case.source, _QUOTING.sub("", case.text))]
        other_language_value = case.rule == "keyword" and any(
            value in case.text and contexts - {case.context}
            for value, contexts in keyword_values.items()
        )
        if same_text_positive & case.kinds or other_language_value:
            dependent.add(index)
    return dependent


# Values shorter than this are not matched inside other cases' text (a 3-character value would
# be found in unrelated text by chance).
_SHARED_VALUE_MIN = 4


def _value_shared(cases: list[PublicCase]) -> set[int]:
    """Indexes of negatives that hold a value the same rule labels a secret in a positive.

    Mechanical: the values are what the shield flags (with the rule's kinds) in the rule's own
    positives, and a negative of that rule holding one of them (as a substring) is listed,
    whether the shield fires on it or not. Such a label cannot be about the value, which the
    same rule calls a secret in another form: it is about the form around it (quotes, a host
    the rule's pattern does not take, a socket path). Counted apart, never dropped.
    """
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for case in cases:
        if case.kinds is None or not case.label:
            continue
        kinds = case.kinds
        values[(case.source, case.rule)] |= {
            case.text[f.start : f.end]
            for f in scan(case.text, syntax=case.syntax)
            if f.kind in kinds and f.end - f.start >= _SHARED_VALUE_MIN
        }
    return {
        index
        for index, case in enumerate(cases)
        if case.kinds is not None
        and not case.label
        and any(value in case.text for value in values[(case.source, case.rule)])
    }


def public_quality(folder: Path, show_misses: bool = False) -> dict[str, Any]:
    """Per-kind recall and FPR on the public cases of the rules the shield covers.

    With `show_misses`, every missed positive and false positive is logged (stderr).
    """
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    uncovered: Counter[str] = Counter()
    cases = list(_public_rows(folder))
    # A rule's negative that is another covered rule's positive for the same kind (a Slack user
    # token is a negative of the bot-token rule) is no negative for that kind: left out.
    positive_kinds: dict[str, set[str]] = defaultdict(set)
    for case in cases:
        if case.kinds is not None and case.label:
            positive_kinds[case.text] |= case.kinds
    file_type_dependent = _file_type_dependent(cases)
    value_shared = _value_shared(cases)
    siblings = 0
    split: Counter[str] = Counter()
    shared: Counter[str] = Counter()
    as_text: Counter[str] = Counter()  # every case scanned as text, as a fact is
    for index, case in enumerate(cases):
        wanted = case.kinds
        if wanted is None:
            uncovered[f"{case.source}:{case.rule}"] += 1
            continue
        if not case.label and positive_kinds[case.text] & wanted:
            siblings += 1
            continue
        fired = any(f.kind in wanted for f in scan(case.text, syntax=case.syntax))
        fired_as_text = any(f.kind in wanted for f in scan(case.text))
        key = "/".join(sorted(wanted)) if len(wanted) > 1 else next(iter(wanted))
        bucket = ("tp" if fired else "fn") if case.label else ("fp" if fired else "tn")
        if case.label:
            as_text["tp" if fired_as_text else "fn"] += 1
        else:
            as_text["fp" if fired_as_text else "tn"] += 1
        stats[key][bucket] += 1
        per_source[case.source][bucket] += 1
        if index in file_type_dependent:
            split[bucket] += 1
        if index in value_shared:
            shared[bucket] += 1
        if show_misses and bucket in ("fn", "fp"):
            note = " (file-type-dependent label)" if index in file_type_dependent else ""
            if index in value_shared:
                note += " (value labelled secret by the same rule)"
            c.log(f"  {bucket.upper()} {key} [{case.source}:{case.rule}]{note} {case.text[:120]!r}")
    totals: Counter[str] = Counter()
    for counts in stats.values():
        totals.update(counts)

    def figures(counts: Counter[str]) -> dict[str, Any]:
        return {
            "positives": counts["tp"] + counts["fn"],
            "negatives": counts["fp"] + counts["tn"],
            "recall": round(_ratio(counts["tp"], counts["tp"] + counts["fn"]), 4),
            "fpr": round(_ratio(counts["fp"], counts["fp"] + counts["tn"]), 4),
        }

    independent = totals - split
    return {
        "overall": figures(totals),
        "overall_as_text": figures(as_text),
        "fpr_excluding_file_type_dependent": figures(independent)["fpr"],
        "file_type_dependent_negatives": {"cases": split["fp"] + split["tn"], "fp": split["fp"]},
        "fpr_excluding_value_shared": figures(totals - shared)["fpr"],
        "value_shared_negatives": {"cases": shared["fp"] + shared["tn"], "fp": shared["fp"]},
        "by_source": {s: figures(n) for s, n in sorted(per_source.items())},
        "by_kind": {k: figures(n) for k, n in sorted(stats.items())},
        "sibling_negatives_left_out": siblings,
        "uncovered_cases": sum(uncovered.values()),
        "uncovered_rules": len(uncovered),
    }


def throughput(target_bytes: int, seed: int, repeats: int = 3) -> dict[str, Any]:
    """MB/s of `scan` on one large fixture-dense text and per fact on synthetic facts: each
    phase runs `repeats` times; the best run is the figure, the median is reported beside it
    (the machine is shared: a single run measures its neighbours too)."""
    texts = [json.loads(line)["text"] for line in FIXTURES.read_text().splitlines()]
    corpus_parts: list[str] = []
    size = 0
    while size < target_bytes:
        for text in texts:
            corpus_parts.append(text)
            size += len(text.encode()) + 2
    corpus = "\n\n".join(corpus_parts)
    corpus_bytes = len(corpus.encode())
    bulk_runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        bulk_findings = len(scan(corpus))
        bulk_runs.append(time.perf_counter() - t)

    generator = c.FactGenerator(seed)
    facts: list[str] = []
    fact_bytes = 0
    while fact_bytes < target_bytes:
        content = generator.content()
        facts.append(content)
        fact_bytes += len(content.encode())
    fact_runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fact_findings = sum(len(scan(text)) for text in facts)
        fact_runs.append(time.perf_counter() - t)
    bulk_s, facts_s = min(bulk_runs), min(fact_runs)
    return {
        "repeats": repeats,
        "bulk_fixture_text": {
            "mb": round(corpus_bytes / 1e6, 2),
            "seconds": round(bulk_s, 3),
            "mb_per_s": round(corpus_bytes / 1e6 / bulk_s, 2),
            "mb_per_s_median": round(corpus_bytes / 1e6 / statistics.median(bulk_runs), 2),
            "findings": bulk_findings,
        },
        "per_fact": {
            "facts": len(facts),
            "mb": round(fact_bytes / 1e6, 2),
            "seconds": round(facts_s, 3),
            "mb_per_s": round(fact_bytes / 1e6 / facts_s, 2),
            "mb_per_s_median": round(fact_bytes / 1e6 / statistics.median(fact_runs), 2),
            "us_per_fact": round(facts_s / len(facts) * 1e6, 2),
            "findings": fact_findings,
        },
    }


def screen_micro(facts: int, seed: int, repeats: int = 5) -> dict[str, Any]:
    """Microseconds per fact of `Shield.screen` on synthetic facts, gated and ungated (best of
    `repeats`, one fact per call as `Cortex.store` does)."""
    generator = c.FactGenerator(seed)
    drafts = []
    for _ in range(facts):
        item = generator.fact()
        drafts.append(
            FactDraft(content=item["content"], tags=tuple(item["tags"]), meta=item.get("meta", {}))
        )
    ungated = tuple(dataclasses.replace(d, min_run=0, min_digits=0, shape="") for d in DETECTORS)
    figures: dict[str, Any] = {"facts": facts}
    for name, shield in (("gated", Shield()), ("ungated", Shield(detectors=ungated))):
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for draft in drafts:
                shield.screen("bench", (draft,))
            best = min(best, time.perf_counter() - t)
        figures[f"{name}_us_per_fact"] = round(best / facts * 1e6, 2)
    return figures


def _public_targets(public: dict[str, Any]) -> dict[str, Any]:
    """Log the public cases' figures; return their target lines."""
    targets: dict[str, Any] = {}
    for kind, fig in public["by_kind"].items():
        c.log(
            f"  {kind:<48} recall {fig['recall']:.3f} ({fig['positives']:>3})"
            f"   FPR {fig['fpr']:.3f} ({fig['negatives']:>3})"
        )
    c.log(f"  by source: {public['by_source']}")
    targets["public_recall"] = c.target_line(
        "public recall", public["overall"]["recall"], "", ">=", TARGET_RECALL
    )
    targets["public_fpr"] = c.target_line(
        "public FPR", public["overall"]["fpr"], "", "<=", TARGET_FPR
    )
    as_text = public["overall_as_text"]
    c.log(f"  every case scanned as text: recall {as_text['recall']:.3f}, FPR {as_text['fpr']:.3f}")
    for left_out, which in (
        ("file_type_dependent", "file-type-dependent negatives"),
        ("value_shared", "negatives holding a value their rule labels secret"),
    ):
        counts = public[f"{left_out}_negatives"]
        targets[f"public_fpr_excluding_{left_out}"] = c.target_line(
            f"public FPR without the {counts['cases']} {which} ({counts['fp']} of them fire)",
            public[f"fpr_excluding_{left_out}"],
            "",
            "<=",
            TARGET_FPR,
        )
    return targets


def main() -> None:
    args = parse_args()
    c.log("fixture set")
    fixture = fixture_quality()
    c.log(
        f"  {fixture['positives']} positives / {fixture['kinds']} kinds, "
        f"{fixture['negatives']} negatives; precision {fixture['precision']:.4f}"
    )
    targets = {
        "fixture_recall": c.target_line(
            "fixture recall", fixture["recall"], "", ">=", TARGET_RECALL
        ),
        "fixture_fpr": c.target_line("fixture FPR", fixture["fpr"], "", "<=", TARGET_FPR),
    }
    public: dict[str, Any] | None = None
    if args.public.is_dir():
        c.log("public labelled cases (per kind)")
        public = public_quality(args.public, show_misses=args.show_misses)
        targets.update(_public_targets(public))
    else:
        c.log(f"public labelled cases: {args.public} not found; skipped (see --public)")
    c.log("throughput")
    speed = throughput(1_000_000 if args.quick else 8_000_000, args.seed)
    for key, phase, name in (
        ("bulk_mb_per_s", "bulk_fixture_text", "bulk scan"),
        ("per_fact_mb_per_s", "per_fact", "per-fact scan"),
    ):
        figures = speed[phase]
        targets[key] = c.target_line(
            f"{name} (best of {speed['repeats']}, median {figures['mb_per_s_median']} MB/s)",
            figures["mb_per_s"],
            "MB/s",
            ">=",
            TARGET_MB_S,
        )
    c.log(f"  per fact: {speed['per_fact']['us_per_fact']} us")
    c.log("Shield.screen per fact (gated vs every detector)")
    micro = screen_micro(2_000 if args.quick else 20_000, args.seed)
    targets["screen_us_per_fact"] = c.target_line(
        "Shield.screen", micro["gated_us_per_fact"], "us/fact", "<=", TARGET_SCREEN_US
    )
    c.log(f"  ungated (all detectors run): {micro['ungated_us_per_fact']} us/fact")
    c.emit(
        {
            "bench": "shield",
            "quick": args.quick,
            "fixture": fixture,
            "public": public,
            "throughput": speed,
            "screen": micro,
            "targets": targets,
            "environment": c.environment(),
        }
    )


if __name__ == "__main__":
    main()

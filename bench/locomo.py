"""LoCoMo evidence retrieval: is the dialogue turn that answers a question among the top hits?

LoCoMo (snap-research/LoCoMo, `locomo10.json`) holds 10 long conversations between two people,
each in up to ~30 dated sessions of dialogue turns, and ~200 questions per conversation, each
with the ids of the turns that answer it (`evidence`) and a category. Every turn is stored as a
fact: content "Speaker: text", source = the speaker, valid_from = the session's date, one
project per conversation, `meta={"dia_id": ...}`. Each question is then searched (k=10) within
its conversation's project, and evidence recall@5 / @10 is the share of its evidence turns
among the first 5 / 10 hits, averaged per category and overall, in hybrid, vector and text mode.

    .venv/bin/python bench/locomo.py --data ../shared/data/locomo/locomo10.json --quick
    .venv/bin/python bench/locomo.py --data ../shared/data/locomo/locomo10.json

Categories (the file holds numbers; names as commonly used with LoCoMo's QA set): 1 multi-hop,
2 temporal, 3 open-domain, 4 single-hop, 5 adversarial (questions about things that were never
said; their evidence is the turn that makes them a trap). "overall" covers every question with
evidence; "overall_1-4" leaves category 5 out, as most published LoCoMo figures do.
Human-readable progress goes to stderr; one JSON line of figures to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common as c

import cortex
from cortex.config import Settings
from cortex.search.metrics import recall_at_k

MODES = ("hybrid", "vector", "text")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
_SESSION = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")
MARKER = "bench-locomo.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures: stderr (human) and one JSON line on stdout.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"the LoCoMo file (default {DEFAULT_DATA})",
    )
    c.add_eval_args(parser)
    parser.add_argument(
        "--conversations",
        type=int,
        help="use the first N conversations (default all; --quick: 2)",
    )
    parser.add_argument("-k", type=int, default=10, help="hits per search (default 10)")
    parser.add_argument("--batch", type=int, default=256, help="turns per store_many call")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated search modes to evaluate"
    )
    parser.add_argument(
        "--run-file",
        type=Path,
        help="write every ranking (JSONL: mode, question, evidence, hit ids) for offline analysis",
    )
    parser.add_argument(
        "--captions",
        action="store_true",
        help="append the caption of a shared image to its turn: 'Speaker: text [shares <caption>]'",
    )
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    if args.conversations is None:
        args.conversations = 2 if args.quick else None
    if not 10 <= args.k <= 1000 or args.batch < 1:
        parser.error("-k must be 10..1000 (recall@10 needs 10 hits) and --batch positive")
    if not args.data.is_file():
        parser.error(f"{args.data} does not exist")
    return args


# ---------------------------------------------------------------------------------- data


@dataclass
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass
class Conversation:
    sample_id: str
    project: str
    turns: list[dict[str, Any]]  # store_many items
    questions: list[Question]
    dropped_evidence: list[str] = field(default_factory=list)


def safe_name(text: str) -> str:
    """`text` as a CORTEX name: runs of other characters become '_', 1-64 characters."""
    name = _UNSAFE.sub("_", text.strip()).strip("._-")[:64]
    return name or "unknown"


def session_time(text: str) -> str:
    """'1:56 pm on 8 May, 2023' -> '2023-05-08T13:56:00+00:00' (the file gives no zone: UTC)."""
    parsed = datetime.strptime(" ".join(text.split()), "%I:%M %p on %d %B, %Y")
    return parsed.replace(tzinfo=UTC).isoformat()


def normalise_evidence(raw: str) -> list[str]:
    """Evidence ids as the turns spell them: 'D8:6; D9:17' -> D8:6, D9:17; 'D:11:26' -> D11:26;
    'D30:05' -> D30:5."""
    return [f"D{s}:{t}" for s, t in _EVIDENCE.findall(raw)]


def load(path: Path, limit: int | None, captions: bool) -> list[Conversation]:
    samples = json.loads(path.read_text(encoding="utf-8"))
    conversations = []
    for number, sample in enumerate(samples[:limit] if limit else samples):
        conv = sample["conversation"]
        sample_id = str(sample.get("sample_id") or f"conv-{number}")
        project = safe_name(sample_id)
        turns = []
        sessions = sorted((int(m.group(1)), key) for key in conv if (m := _SESSION.fullmatch(key)))
        for session, key in sessions:
            when = session_time(conv[f"{key}_date_time"])
            for turn in conv[key]:
                content = f"{turn['speaker']}: {turn['text']}"
                if captions and turn.get("blip_caption"):
                    content += f" [shares {turn['blip_caption']}]"
                turns.append(
                    {
                        "content": content,
                        "project": project,
                        "source": safe_name(turn["speaker"]),
                        "valid_from": when,
                        "meta": {"dia_id": turn["dia_id"], "session": session},
                    }
                )
        known = {t["meta"]["dia_id"] for t in turns}
        questions, dropped = [], []
        for qa in sample["qa"]:
            evidence: list[str] = []
            for raw in qa.get("evidence") or ():
                ids = normalise_evidence(str(raw))
                if not ids or any(i not in known for i in ids):
                    dropped.append(str(raw))
                evidence.extend(i for i in ids if i in known and i not in evidence)
            questions.append(Question(qa["question"], int(qa["category"]), evidence))
        conversations.append(Conversation(sample_id, project, turns, questions, dropped))
    return conversations


# ---------------------------------------------------------------------------------- run


def fingerprint(conversations: list[Conversation]) -> str:
    digest = hashlib.sha256()
    for conv in conversations:
        for turn in conv.turns:
            digest.update(json.dumps(turn, sort_keys=True).encode() + b"\0")
    return digest.hexdigest()[:16]


async def ingest(
    engine: cortex.Cortex, conversations: list[Conversation], batch: int, home: Path
) -> dict[str, Any]:
    """Store every turn unless `home` already holds exactly these turns (bench-locomo.json)."""
    marker = home / MARKER
    turns_id = fingerprint(conversations)
    facts = (await engine.stats()).facts
    if marker.exists():
        known = json.loads(marker.read_text())
        if known.get("turns") == turns_id and known.get("facts") == facts:
            c.log(f"ingest: {home} already holds these {facts:,} turns; reusing it")
            return {"reused": True, **known.get("ingest", {})}
    if facts:
        raise SystemExit(
            f"{home} holds {facts:,} facts that are not these turns: use another --home"
        )
    total = sum(len(conv.turns) for conv in conversations)
    c.log(f"ingest: {total:,} turns of {len(conversations)} conversations, batches of {batch}")
    t0 = time.perf_counter()
    done = 0
    for conv in conversations:
        for start in range(0, len(conv.turns), batch):
            chunk = conv.turns[start : start + batch]
            await engine.store_many(chunk)
            done += len(chunk)
        rate = done / (time.perf_counter() - t0)
        c.log(f"  {conv.sample_id}: {len(conv.turns):,} turns; {rate:,.0f} turns/s")
    seconds = time.perf_counter() - t0
    chars = sum(len(t["content"]) for conv in conversations for t in conv.turns)
    figures = {
        "reused": False,
        "turns": total,
        "seconds": round(seconds, 2),
        "turns_per_s": round(total / seconds, 1),
        "mean_chars_per_turn": round(chars / max(total, 1), 1),
    }
    c.log(f"ingest: {total:,} turns in {seconds:.1f} s = {figures['turns_per_s']:,.0f} turns/s")
    marker.write_text(json.dumps({"turns": turns_id, "facts": total, "ingest": figures}))
    return figures


def summarise(rows: list[tuple[int, float, float, bool]]) -> dict[str, Any]:
    """rows: (category, recall@5, recall@10, all evidence in top 10)."""
    return {
        "questions": len(rows),
        "recall@5": round(c.mean([r[1] for r in rows]), 4),
        "recall@10": round(c.mean([r[2] for r in rows]), 4),
        "all@10": round(c.mean([float(r[3]) for r in rows]), 4),
    }


async def evaluate(
    engine: cortex.Cortex,
    conversations: list[Conversation],
    mode: str,
    k: int,
    runs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    rows: list[tuple[int, float, float, bool]] = []
    times = []
    t0 = time.perf_counter()
    for conv in conversations:
        for q in conv.questions:
            if not q.evidence:
                continue
            t = time.perf_counter()
            hits = await engine.search(q.text, k=k, mode=mode, project=conv.project)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t)
            ranked = [str(h.fact.meta.get("dia_id")) for h in hits]
            rel = dict.fromkeys(q.evidence, 1)
            r10 = recall_at_k(ranked, rel, 10)
            rows.append((q.category, recall_at_k(ranked, rel, 5), r10, r10 == 1.0))
            if runs is not None:
                runs.append(
                    {
                        "mode": mode,
                        "conversation": conv.sample_id,
                        "question": q.text,
                        "category": q.category,
                        "evidence": q.evidence,
                        "hits": ranked,
                        "scores": [round(h.score, 6) for h in hits],
                    }
                )
    by_cat: dict[int, list[tuple[int, float, float, bool]]] = defaultdict(list)
    for row in rows:
        by_cat[row[0]].append(row)
    result: dict[str, Any] = {
        "categories": {
            f"{cat}-{CATEGORIES.get(cat, 'unknown')}": summarise(by_cat[cat])
            for cat in sorted(by_cat)
        },
        "overall": summarise(rows),
        "overall_1-4": summarise([r for r in rows if r[0] != 5]),
        "latency": c.percentiles_ms(times),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    o, lat = result["overall"], result["latency"]
    c.log(
        f"  {mode:<7} overall R@5 {o['recall@5']:.4f}  R@10 {o['recall@10']:.4f}"
        f"  (1-4: R@5 {result['overall_1-4']['recall@5']:.4f}"
        f"  R@10 {result['overall_1-4']['recall@10']:.4f})"
        f"  p50 {lat['p50_ms']:.1f} ms  p95 {lat['p95_ms']:.1f} ms"
    )
    return result


async def run(args: argparse.Namespace, home: Path, settings: Settings) -> dict[str, Any]:
    conversations = load(args.data, args.conversations, args.captions)
    questions = [q for conv in conversations for q in conv.questions]
    with_evidence = sum(1 for q in questions if q.evidence)
    dropped = {
        conv.sample_id: conv.dropped_evidence for conv in conversations if conv.dropped_evidence
    }
    result: dict[str, Any] = {
        "bench": "locomo",
        "data": str(args.data.resolve()),
        "quick": args.quick,
        "captions": args.captions,
        "home": str(home),
        "k": args.k,
        "conversations": len(conversations),
        "turns": sum(len(conv.turns) for conv in conversations),
        "questions": len(questions),
        "questions_evaluated": with_evidence,
        "questions_without_evidence": len(questions) - with_evidence,
        "evidence_unresolved": dropped,
        "settings": c.settings_figures(settings),
        "env": c.environment(),
    }
    c.log(
        f"LoCoMo: {len(conversations)} conversations, {result['turns']:,} turns,"
        f" {len(questions):,} questions ({with_evidence:,} with evidence that names a turn);"
        f" evidence entries not matching any turn: {sum(len(v) for v in dropped.values())}"
        f" {sorted(v for vs in dropped.values() for v in vs)}"
    )
    c.log(f"home {home}; settings {result['settings']}; load average {result['env']['loadavg_1m']}")
    embedder, load_seconds = c.load_embedder(settings.embedder)
    result["model_load_seconds"] = round(load_seconds, 2)
    runs: list[dict[str, Any]] | None = [] if args.run_file else None
    engine = await cortex.open(settings, embedder=embedder)
    try:
        result["ingest"] = await ingest(engine, conversations, args.batch, home)
        c.log(f"evaluate: k={args.k}, modes {args.modes}, search within each conversation")
        result["modes"] = {
            m: await evaluate(engine, conversations, m, args.k, runs) for m in args.modes
        }
    finally:
        await engine.aclose()
    if args.run_file and runs is not None:
        with args.run_file.open("w", encoding="utf-8") as f:
            for line in runs:
                f.write(json.dumps(line) + "\n")
        c.log(f"rankings written to {args.run_file}")
    result["peak_rss_mib"] = c.peak_rss_mib()
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    with c.bench_home(args.home, args.keep) as (home, _temporary):
        settings = c.eval_settings(home, args)
        result = asyncio.run(run(args, home, settings))
    result["total_seconds"] = round(time.perf_counter() - t0, 2)
    c.log("summary: evidence recall@5 / recall@10 (questions)")
    modes = result["modes"]
    names = [*next(iter(modes.values()))["categories"], "overall", "overall_1-4"]
    c.log("  " + f"{'category':<15}" + "".join(f"{m:>16}" for m in modes) + "       n")
    for name in names:
        cells = ""
        n = 0
        for r in modes.values():
            figures = r["categories"].get(name) or r.get(name) or {}
            n = figures.get("questions", 0)
            cells += f"   {figures.get('recall@5', 0):.3f} / {figures.get('recall@10', 0):.3f}"
        c.log(f"  {name:<15}{cells}  {n:>6}")
    c.log(
        f"  total {result['total_seconds']:.1f} s; load average now {c.environment()['loadavg_1m']}"
    )
    c.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

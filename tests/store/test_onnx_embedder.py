"""The default embedder (ONNX Runtime) against sentence-transformers on the same weights."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cortex.errors import ConfigError
from cortex.search.embedder import MiniLMEmbedder, TorchMiniLMEmbedder, make_embedder
from cortex.search.onnx_model import ensure_onnx_model, model_cache_dir

TEXTS = [
    "who owns the billing service?",
    "db-2 is the staging database in eu-west-1",
    "",
    "x",
    "Größe, naïve café — 東京の天気は晴れ 🌤️",
    "The release train leaves on Tuesdays; hotfixes need two approvals. " * 40,  # > 256 tokens
    "SELECT * FROM facts WHERE tenant = 'acme' AND valid_until IS NULL;",
]


@pytest.fixture(scope="module")
def torch_embedder() -> TorchMiniLMEmbedder:
    return TorchMiniLMEmbedder()


def test_the_onnx_vectors_equal_the_torch_vectors(
    embedder: MiniLMEmbedder, torch_embedder: TorchMiniLMEmbedder
) -> None:
    onnx = embedder.embed(TEXTS)
    reference = torch_embedder.embed(TEXTS)
    assert onnx.shape == reference.shape == (len(TEXTS), 384)
    assert onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(onnx * reference, axis=1)
    assert cosines.min() >= 0.99999, cosines
    assert embedder.model_id == torch_embedder.model_id  # stores stay valid across the switch


def test_order_batches_and_single_calls_agree(embedder: MiniLMEmbedder) -> None:
    together = embedder.embed(TEXTS)
    one_by_one = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert np.allclose(together, one_by_one, atol=1e-5)  # padding does not change a vector
    small_batches = MiniLMEmbedder(batch_size=2).embed(TEXTS)
    assert np.allclose(together, small_batches, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_make_embedder_names_and_bad_threads() -> None:
    assert isinstance(make_embedder("minilm"), MiniLMEmbedder)
    assert isinstance(make_embedder("minilm-torch"), TorchMiniLMEmbedder)
    assert make_embedder("none") is None
    with pytest.raises(ConfigError, match="unknown embedder"):
        make_embedder("bert")
    with pytest.raises(ConfigError, match="threads"):
        MiniLMEmbedder(threads=0)


def test_concurrent_first_uses_export_once_and_leave_no_partial_file(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    with ThreadPoolExecutor(3) as pool:
        found = list(pool.map(ensure_onnx_model, [cache] * 3, timeout=600))
    assert len(set(found)) == 1
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [
        found[0].name
    ]
    vectors = MiniLMEmbedder(cache_dir=cache).embed(["a fresh export works"])
    assert vectors.shape == (1, 384)


def test_an_unwritable_cache_is_a_clear_config_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(ConfigError, match="CORTEX_MODEL_CACHE"):
        ensure_onnx_model(blocked / "models")
    assert model_cache_dir({"CORTEX_MODEL_CACHE": "/x/y"}) == Path("/x/y")
    assert model_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/cortex/models")


def test_usearch_loaded_first_gives_a_config_error_not_a_crash() -> None:
    code = (
        "import usearch.index\n"
        "from cortex.errors import ConfigError\n"
        "from cortex.search.embedder import MiniLMEmbedder\n"
        "try:\n"
        "    MiniLMEmbedder().embed(['x'])\n"
        "except ConfigError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "import cortex first" in done.stdout

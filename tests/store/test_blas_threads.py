"""The servers run numpy's BLAS on one thread (its spinning helpers took most of a core)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = """
import json
from threadpoolctl import threadpool_info
import numpy as np
from cortex.search.vectors import use_one_blas_thread
before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
use_one_blas_thread()
after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
scores = np.ones((4000, 384), dtype=np.float32) @ np.ones(384, dtype=np.float32)
print(json.dumps({"before": before, "after": after, "score": float(scores[0])}))
"""


def test_use_one_blas_thread_limits_every_blas_library_to_one_thread() -> None:
    # A fresh process that would use two BLAS threads, as on the 2-core machines here.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out)
    assert result["before"]
    assert max(result["before"]) == 2
    assert result["after"] == [1] * len(result["before"])
    assert result["score"] == 384.0

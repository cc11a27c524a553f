"""Prometheus metrics of one service app, in a registry of its own (never the global default).

Request counts and latency by route template, requests in flight and (under `cortex serve`) open
connections, search latency by mode, embedding batch latency, writes by operation, errors by
problem type, and the engine's writer: queue depth, groups, requests, overloads, restarts.
With `--workers N`, each worker process exports its own figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cortex.engine import Cortex
from cortex.search.embedder import Embedder

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE", "ApiMetrics", "TimedEmbedder"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _WriterCollector(Collector):
    """Reads the engine's writer at scrape time (nothing is copied in between)."""

    def __init__(self, engine: Cortex) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        writer = self._engine.writer
        stats = writer.stats
        yield GaugeMetricFamily(
            "cortex_write_queue_depth", "Write requests waiting for the writer", writer.queue_depth
        )
        yield GaugeMetricFamily(
            "cortex_writer_running", "1 while the group-commit writer runs", int(writer.running)
        )
        for name, help_text, value in (
            ("cortex_writer_groups", "Group commits made", stats.groups),
            ("cortex_writer_requests", "Write requests committed or refused", stats.requests),
            ("cortex_writer_errors", "Groups failed by a writer crash", stats.errors),
            ("cortex_writer_overloaded", "Writes refused: queue full", stats.overloaded),
            ("cortex_writer_restarts", "Writer restarts after a crash", stats.restarts),
        ):
            yield CounterMetricFamily(name, help_text, value)


class ApiMetrics:
    """The metrics of one app; `render()` gives the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cortex_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cortex_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "cortex_http_requests_in_flight",
            "HTTP requests being answered",
            registry=self.registry,
        )
        self.open_connections = Gauge(
            "cortex_http_open_connections",
            "Open client connections of the server (set by `cortex serve`)",
            registry=self.registry,
        )
        self.search_latency = Histogram(
            "cortex_search_duration_seconds",
            "Time of a search in the engine (query embedding included), by mode",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.embed_latency = Histogram(
            "cortex_embedding_batch_duration_seconds",
            "Time to embed one batch of texts",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.writes = Counter(
            "cortex_writes",
            "Write operations acknowledged, by operation (facts for store)",
            ["op"],
            registry=self.registry,
        )
        self.errors = Counter(
            "cortex_errors",
            "Error responses by problem type",
            ["type"],
            registry=self.registry,
        )
        self._writer: _WriterCollector | None = None

    def watch_engine(self, engine: Cortex) -> None:
        """Export `engine`'s writer figures (once the lifespan opened it)."""
        self.forget_engine()
        self._writer = _WriterCollector(engine)
        self.registry.register(self._writer)

    def forget_engine(self) -> None:
        """Stop exporting the engine's figures (it is closing)."""
        if self._writer is not None:
            self.registry.unregister(self._writer)
            self._writer = None

    def track_connections(self, count: Callable[[], int]) -> None:
        """Report `count()` as the open connections gauge at each scrape."""
        self.open_connections.set_function(lambda: float(count()))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class TimedEmbedder:
    """An embedder that reports the latency of every batch to `metrics`."""

    def __init__(self, inner: Embedder, metrics: ApiMetrics) -> None:
        self._inner = inner
        self._histogram = metrics.embed_latency

    @property
    def dim(self) -> int:
        """Dimensions of the vectors."""
        return self._inner.dim

    @property
    def model_id(self) -> str:
        """The wrapped model's id."""
        return self._inner.model_id

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed `texts` with the wrapped model, timing the batch."""
        start = time.perf_counter()
        try:
            return self._inner.embed(texts)
        finally:
            self._histogram.observe(time.perf_counter() - start)

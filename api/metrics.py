"""Prometheus metrics of the API process, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

POSTINGS_ACCEPTED = Counter(
    "ledgerflow_postings_accepted_total", "Posting requests recorded by intake", ["result"]
)
INTAKE_BATCH_SIZE = Histogram(
    "ledgerflow_intake_batch_size",
    "Posting requests per intake commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
INTAKE_COMMIT_SECONDS = Histogram(
    "ledgerflow_intake_commit_seconds",
    "Time to commit one intake batch and enqueue its jobs",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
ENQUEUE_FAILURES = Counter(
    "ledgerflow_enqueue_failures_total",
    "Intake commits whose jobs could not be enqueued (the reconciler re-enqueues them)",
)
TRANSIENT_RETRIES = Counter(
    "ledgerflow_transient_retries_total", "Database operations retried after a transient fault"
)
WAITS = Counter("ledgerflow_waits_total", "Waited requests by how they ended", ["result"])

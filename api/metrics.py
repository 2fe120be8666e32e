"""Prometheus metrics, served at /metrics: this API process's own, then the deployment's.

The first part (intake, waits, retries, backpressure) is counted in this process; with
several API processes, scrape each. The second part is read at scrape time from PostgreSQL
and from the counters every worker keeps in Redis, so any one API process shows every
partition and every worker.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ledger_core.services import Ledger
from runtime.context import Runtime
from runtime.status import ops_status
from runtime.telemetry import read_counters

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
    "ledgerflow_transient_retries_total",
    "API database operations retried after a transient fault, by SQLSTATE",
    ["sqlstate"],
)
WAITS = Counter("ledgerflow_waits_total", "Waited requests by how they ended", ["result"])
REFUSED_BY_BACKPRESSURE = Counter(
    "ledgerflow_backpressure_refusals_total",
    "Posting requests refused because a lag or backlog bound was passed",
    ["code"],
)


class ClusterCollector(Collector):
    """The deployment as a whole, read at scrape time: partitions from PostgreSQL and Redis,
    and the counters and histograms every worker adds to Redis (see `runtime.telemetry`)."""

    def __init__(self, runtime: Runtime, ledger: Ledger) -> None:
        self.runtime = runtime
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        status = ops_status(runtime, self.ledger)
        queued = GaugeMetricFamily(
            "ledgerflow_partition_queued_postings",
            "Postings accepted and not yet applied, per partition (PostgreSQL)",
            labels=["partition"],
        )
        lag_seconds = GaugeMetricFamily(
            "ledgerflow_partition_lag_seconds",
            "Age of the oldest queued posting, per partition",
            labels=["partition"],
        )
        jobs = GaugeMetricFamily(
            "ledgerflow_partition_jobs_waiting",
            "RQ jobs waiting in the partition's queue (Redis)",
            labels=["partition"],
        )
        owned = GaugeMetricFamily(
            "ledgerflow_partition_owned",
            "1 when a live lease holds the partition",
            labels=["partition"],
        )
        for partition in status.partitions:
            label = [str(partition.partition)]
            queued.add_metric(label, partition.queued)
            lag_seconds.add_metric(label, partition.oldest_age_s)
            jobs.add_metric(label, partition.jobs_waiting)
            owned.add_metric(label, 1 if partition.owner is not None else 0)
        yield from (queued, lag_seconds, jobs, owned)
        yield GaugeMetricFamily(
            "ledgerflow_live_workers",
            "Workers with a recent heartbeat",
            value=status.totals.live_workers,
        )

        counters = read_counters(runtime.redis)
        postings = CounterMetricFamily(
            "ledgerflow_postings_finished",
            "Postings applied by workers, by outcome and refusal code",
            labels=["outcome", "code"],
        )
        for (outcome, code), value in sorted(counters.postings.items()):
            postings.add_metric([outcome, code], value)
        retries = CounterMetricFamily(
            "ledgerflow_worker_retries",
            "Worker database operations retried after a transient fault, by SQLSTATE",
            labels=["sqlstate"],
        )
        for sqlstate, value in sorted(counters.retries.items()):
            retries.add_metric([sqlstate], value)
        lease_changes = CounterMetricFamily(
            "ledgerflow_lease_changes",
            "Partition leases claimed, released and lost by workers",
            labels=["change"],
        )
        for change in ("claimed", "released", "lost"):
            lease_changes.add_metric([change], counters.leases.get(change, 0))
        yield from (postings, retries, lease_changes)
        yield CounterMetricFamily(
            "ledgerflow_batches_fenced",
            "Batches refused at the fence: their worker's lease had been taken over",
            value=counters.batches_fenced,
        )
        for name, documentation, histogram in (
            ("ledgerflow_batch_size", "Postings per applied batch", counters.batch_size),
            (
                "ledgerflow_apply_seconds",
                "Time to apply and commit one batch",
                counters.apply_seconds,
            ),
        ):
            yield HistogramMetricFamily(
                name,
                documentation,
                buckets=[
                    ("+Inf" if bound == float("inf") else f"{bound:g}", count)
                    for bound, count in histogram.buckets
                ],
                sum_value=histogram.total,
            )


def exposition(runtime: Runtime, ledger: Ledger) -> bytes:
    """This process's metrics followed by the deployment's."""
    cluster = CollectorRegistry(auto_describe=False)
    cluster.register(ClusterCollector(runtime, ledger))
    return generate_latest(REGISTRY) + generate_latest(cluster)

"""The queue side of LedgerFlow: RQ queues per partition, the job that applies a batch,
partition leases, the reconciler and the worker process loop."""

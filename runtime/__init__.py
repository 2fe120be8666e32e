"""What the API and the workers share, and nothing else: the seam between the two sides.

- `context`: the process context (settings, database, Redis) that the composition root
  (`ledgerflow`) builds once per process and hands to each side;
- `queues`: partition queue names and enqueueing (the API enqueues, workers consume);
- `wakeups`: the wake-up format workers publish after a commit and the API waits on;
- `telemetry`: the counters workers keep in Redis and the API's metrics read;
- `status`: the operator's view of a deployment as one typed value, for the `/ops` page,
  the status endpoint, the CLI and the metrics.

`api` and `worker` never import each other; both import this package and `ledger_core`.
"""

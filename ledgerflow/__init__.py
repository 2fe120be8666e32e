"""The `ledgerflow` command: dev, migrate, serve, worker, verify."""

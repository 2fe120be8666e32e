"""The store: the only package that speaks SQL, one module per thing it stores.

- `database`: engine set-up per dialect, SQLSTATE -> `LedgerError` mapping, `Database`
  (transaction scopes) and `Repository` (the statements of one transaction);
- `tables`: the schema as SQLAlchemy Core tables (the migrations create it);
- `accounts`, `intake`, `apply`, `backlog`, `reads`: the statements, by what they store;
- `leases`: partition leases with fencing tokens and the worker registry;
- `audit`: the read-only invariant checks of `ledgerflow verify`;
- `rows`: row mappers and the cursor codec.

Outside `ledger_core`, the composition root (`runtime.context`, used by `ledgerflow`)
builds the `Database` a process uses, and the worker and the operator's status hold
partition leases through `store.leases`; the API reaches the database only through
`ledger_core.services` (an import-linter contract in pyproject.toml).
"""

from ledger_core.store.database import Database, Repository, create_database

__all__ = ["Database", "Repository", "create_database"]

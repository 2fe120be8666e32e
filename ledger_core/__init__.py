"""LedgerFlow's domain: money, accounts, postings, the pure posting engine, the services
and the store.

Nothing in this package imports a web framework or a queue; `api/` and `worker/` call the
same services defined here.
"""

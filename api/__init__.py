"""The HTTP side of LedgerFlow: the FastAPI app, its routes, intake and waiting."""

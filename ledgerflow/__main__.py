"""`python -m ledgerflow` is the `ledgerflow` command."""

from ledgerflow.cli import main

main()

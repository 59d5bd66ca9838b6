"""`python -m reconciler`: the operations CLI, as the `reconciler` command (docs/operations.md). Not in the Lambda
asset (infra/runtime_asset.py leaves it out with the CLI)."""

from reconciler.cli.main import main

if __name__ == "__main__":
    main()

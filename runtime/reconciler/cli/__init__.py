"""The `reconciler` operations CLI: thin typer commands over reconciler.ops."""

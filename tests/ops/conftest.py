"""tests/ops: pure operations logic, no AWS and no server."""

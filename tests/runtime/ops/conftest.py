"""tests/runtime/ops: pure operations logic, no AWS and no server."""

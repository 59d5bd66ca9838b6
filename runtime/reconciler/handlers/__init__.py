"""Thin Lambda entry points: parse, call one use case, emit logs and metrics."""

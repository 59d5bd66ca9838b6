"""The local stack: AWS on 127.0.0.1 (a moto server made faithful by `fidelity.py`), with the reconciler's resources
created from its synthesized templates and its functions run in-process as Lambda would run them.

Lives beside `infra/` in the checkout and is never installed with the `reconciler` package, which imports nothing
of it (.importlinter). `python -m emulator up|down|send|seed` is its command line (emulator/cli.py); the tests, the
simulator, the benchmarks, `make demo` (scripts/demo.py) and the smoke test's `--env local` stand on it.
"""

"""The local stack: an embedded AWS endpoint (moto server on 127.0.0.1) built from the synthesized templates.

Not part of the Lambda asset (infra excludes reconciler/local); used by `make demo`, the CLI's --local
mode, the smoke test and the integration tests.
"""

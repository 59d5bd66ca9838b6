#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth --context stage=prod` or `python app.py` (stage from CDK_CONTEXT_JSON, else dev)."""

from infra.app import build_app
from reconciler.contract import UnknownStageError

try:
    app = build_app()
except UnknownStageError as error:
    raise SystemExit(f"error: {error}") from None  # one clear line instead of a traceback
app.synth()

#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth --context stage=prod [--context mode=shadow]` or `python app.py` (stage and mode
from CDK_CONTEXT_JSON, else dev and full)."""

from infra.app import build_app
from infra.config import UnknownModeError
from reconciler.contract import UnknownStageError

try:
    app = build_app()
except (UnknownStageError, UnknownModeError) as error:
    raise SystemExit(f"error: {error}") from None  # one clear line instead of a traceback
app.synth()

"""The CI roles' app, for an account admin (docs/infrastructure.md, "CI roles"):

    npx cdk deploy --app ".venv/bin/python -m infra.ci_app" --context stage=prod

The pipeline never deploys it: its roles cannot widen themselves through a merged change.
"""

from __future__ import annotations

from infra.app import build_ci_app

if __name__ == "__main__":
    build_ci_app().synth()

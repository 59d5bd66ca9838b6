"""docs/pipeline.md's runnable example, run verbatim (bash and the aws CLI, not Python) against `python -m emulator up`:
create the job, hold through the hold function, record the render, publish it, see it settled once."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from emulator.server import LOCAL_ENV
from reconciler.ops.target import STATE_DIR_ENV
from tests.integration.cli.conftest import CHECKOUT, emulator_process

DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline.md"


def example() -> str:
    text = DOC.read_text()
    block = re.search(r"<!-- pipeline-example:start -->\n```bash\n(.*?)```\n<!-- pipeline-example:end -->", text, re.DOTALL)
    assert block, "docs/pipeline.md lost its runnable example"
    return block.group(1)


def test_the_pipeline_example_holds_publishes_and_is_settled_once(running_stack, tmp_path):
    venv_aws = Path(sys.executable).with_name("aws")
    aws_dir = str(venv_aws.parent) if venv_aws.exists() else os.path.dirname(shutil.which("aws") or "")
    user = "pipeline-example-user"
    seeded = subprocess.run(
        emulator_process("--stage", running_stack.stage, "seed", user, "100"),
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, STATE_DIR_ENV: str(running_stack.state_dir)},
    )
    assert seeded.returncode == 0, seeded.stderr
    environment = {**os.environ, **LOCAL_ENV, "AWS_PAGER": "", "EP": running_stack.endpoint, "STAGE": running_stack.stage, "USER_ID": user}
    environment["PATH"] = f"{aws_dir}:{environment['PATH']}"
    done = subprocess.run(["bash", "-c", example()], cwd=tmp_path, capture_output=True, text=True, timeout=180, env=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    hold = json.loads((tmp_path / "hold.json").read_text())
    assert (hold["status"], hold["credits"], hold["unitPrice"]) == ("held", 24, 2)  # 12 s of standard-v1 at 2
    job = json.loads((tmp_path / "job.json").read_text())["Item"]
    # 10.5 s charged at the held price: 21 credits; the hold of 24 released
    assert (job["settledAs"]["S"], job["chargedCredits"]["N"], job["releasedCredits"]["N"]) == ("rendered", "21", "24")
    assert "unsettled" not in job

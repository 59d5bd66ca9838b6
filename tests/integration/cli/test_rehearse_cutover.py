"""`make rehearse-cutover` (scripts/rehearse_cutover.py) as an operator runs it: a subprocess on its own local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_rehearsal_settles_every_job_once_and_ends_with_clean_books(tmp_path, dev_templates):
    # dev_templates: the stage in the session's synthesis cache first, which the rehearsal reads (emulator/stack.py)
    summary_path = tmp_path / "summary.json"
    command = [sys.executable, str(REPO / "scripts" / "rehearse_cutover.py"), "--users", "4", "--jobs", "24", "--summary", str(summary_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True
    assert (summary["eventsLost"], summary["settledTwice"], summary["renderedNotChargedOnce"]) == (0, 0, 0)
    assert summary["settledByV1"] == 24 and summary["settledByV2"] == summary["jobs"] - 24
    assert summary["auditDiscrepanciesAfter"] == 0
    # The deployed shadow decided every event v1's rule received, each delivery once (redeliveries too)
    assert summary["shadow"]["decided"] == summary["shadow"]["v1Received"] > 24
    assert "make deploy-shadow" in summary["commands"] and any("shadow report --deployed" in c for c in summary["commands"])
    # v1's lost updates are named by the shadow report and by the opening audit, and corrected once
    assert summary["shadow"]["v2"] == summary["shadow"]["v1Ledger"] != summary["shadow"]["v1Balances"]
    assert summary["shadow"]["lostUpdateUsers"] == summary["migrate"]["openingDifferences"] == summary["migrate"]["corrections"] >= 1
    assert summary["migrate"]["rerun"] == {"already-marked": 24, "after-cutover": summary["migrate"]["applied"]["after-cutover"]}
    assert summary["v2Outcomes"]["duplicate"] >= 5  # the archive's overlap with what v1 settled moved nothing
    assert any(command.startswith("reconciler --local migrate --cutover") for command in summary["commands"])

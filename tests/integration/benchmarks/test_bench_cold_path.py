"""The event path's cold start: the entry module must not import what only other paths use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._child import NOT_ON_EVENT_PATH, STUB_ENV

REPO_ROOT = Path(__file__).resolve().parents[3]


def _loaded_after_import(module: str, tmp_path) -> dict:
    out = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks._child", "modules", str(out), module],
        cwd=REPO_ROOT,
        env={**os.environ, **STUB_ENV},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text())


def test_entry_module_does_not_import_other_paths(tmp_path):
    loaded = _loaded_after_import("reconciler.handlers.entry", tmp_path)
    assert loaded["present"] == []
    # The event path itself is loaded, so the check above is about the right process.
    assert "reconciler.handlers.video_events" in loaded["all"]
    assert "reconciler.repository.dynamodb" in loaded["all"]


def test_the_list_covers_the_heavy_optional_modules():
    assert set(NOT_ON_EVENT_PATH) == {
        "aws_xray_sdk",
        "aws_lambda_powertools.utilities.data_classes",
        "aws_lambda_powertools.utilities.parameters",
        "reconciler.handlers.scheduled_scan",
        "reconciler.service.timer_scan",
        "reconciler.notify",
        "reconciler.cli",
        "reconciler.ops",
        "emulator",
        "moto",
    }


def test_timer_scan_entry_does_load_the_scan(tmp_path):
    loaded = _loaded_after_import("reconciler.handlers.scheduled_scan", tmp_path)
    # Sanity check of the detector: the scan's own entry point is seen (the scan itself is built on the first tick).
    assert loaded["present"] == ["reconciler.handlers.scheduled_scan"]

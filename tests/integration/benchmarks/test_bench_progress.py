"""The bench writes each section's results as it completes (benchmarks/progress.py): a crash loses only the section
that was running, and --resume runs only what the file lacks."""

from __future__ import annotations

import json

import pytest

from benchmarks.progress import DONE, Sections


class Crash(Exception):
    pass


def test_a_completed_section_is_on_disk_before_the_next_one_runs_and_survives_its_crash(tmp_path):
    path = tmp_path / "partial.json"
    run = Sections({"quick": True}, path, log=lambda message: None)
    seen_on_disk: list[dict] = []

    def second() -> dict:
        seen_on_disk.append(json.loads(path.read_text()))
        raise Crash("the machine gave up")

    run.run("tiny", "a tiny section", lambda: {"tiny": {"events": 3}})
    with pytest.raises(Crash):
        run.run("second", "a section that crashes", second)
    saved = json.loads(path.read_text())
    assert seen_on_disk[0]["tiny"] == {"events": 3}  # written when its section ended, not at the end of the run
    assert saved[DONE] == ["tiny"] and saved["tiny"] == {"events": 3} and "second" not in saved
    assert saved["quick"] is True and saved["elapsed_s"] >= 0


def test_a_resumed_run_skips_what_is_saved_runs_the_rest_and_removes_the_file(tmp_path):
    path = tmp_path / "partial.json"
    first = Sections({"quick": True}, path, log=lambda message: None)
    first.run("tiny", "a tiny section", lambda: {"tiny": 1})
    calls: list[str] = []
    resumed = Sections.resumed_or_new({"quick": False}, resume=True, path=path, log=lambda message: None)
    assert resumed.results["quick"] is True  # the saved run's own settings, not this command line's
    resumed.run("tiny", "a tiny section", lambda: calls.append("tiny") or {"tiny": 2})
    resumed.run("next", "the next section", lambda: calls.append("next") or {"next": 3})
    assert calls == ["next"]
    results = resumed.finish()
    assert (results["tiny"], results["next"]) == (1, 3) and DONE not in results
    assert not path.exists()


def test_without_resume_a_run_starts_afresh_whatever_is_saved(tmp_path):
    path = tmp_path / "partial.json"
    Sections({"quick": True}, path, log=lambda message: None).run("tiny", "a tiny section", lambda: {"tiny": 1})
    fresh = Sections.resumed_or_new({"quick": False}, resume=False, path=path, log=lambda message: None)
    assert fresh.results == {DONE: [], "quick": False}


def test_the_bench_keeps_every_section_before_the_one_that_crashed(tmp_path, monkeypatch):
    from benchmarks import measure, progress, run

    partial = tmp_path / "partial.json"
    monkeypatch.setattr(progress, "PARTIAL", partial)
    monkeypatch.setattr(run, "function_settings", lambda stage: {"stage": stage})
    for name in ("handler_cpu", "telemetry", "max_memory", "import_times"):
        monkeypatch.setattr(measure, name, lambda *args, name=name, **kwargs: {"measured": name})
    monkeypatch.setattr(measure, "heaviest_imports", lambda: [])
    monkeypatch.setattr(measure, "modules_on_event_path", lambda: {"present": []})

    def crash(results: dict, quick: bool) -> dict:
        raise Crash("moto did not start")

    monkeypatch.setattr(run, "_on_one_stack", crash)
    with pytest.raises(Crash):
        run.main(["--quick"])
    saved = json.loads(partial.read_text())
    assert saved[DONE] == ["function", "cpu", "telemetry", "memory", "stream_batching", "imports"]
    assert saved["memory"] == {"measured": "max_memory"} and saved["function"] == {"stage": "prod"}

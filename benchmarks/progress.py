"""The bench's results as they are measured: each section's results go to a file the moment the section completes,
so a crash (or a machine too loaded to finish) loses only the section that was running, and
`python -m benchmarks.run --resume` starts from that file and runs only the sections it lacks.

The file is build/bench/partial.json (not docs/benchmarks.json, which keeps the last complete run for --render);
a run that completes removes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARTIAL = Path(__file__).resolve().parents[1] / "build" / "bench" / "partial.json"
DONE = "sections_done"


class Sections:
    """The results of one bench run, written after every section."""

    def __init__(self, results: dict[str, Any], path: Path = PARTIAL, log: Callable[[str], None] = print) -> None:
        self.results = {DONE: [], **results}
        self.path = path
        self.log = log
        self._started = time.perf_counter()
        self._elapsed_before = float(self.results.get("elapsed_s", 0.0))

    @classmethod
    def resumed_or_new(cls, fresh: dict[str, Any], resume: bool, path: Path = PARTIAL, log: Callable[[str], None] = print) -> Sections:
        """A run resumed from `path` when asked and there is one (its own settings kept: quick, scales), else `fresh`."""
        if resume and path.exists():
            saved = json.loads(path.read_text())
            log(f"resuming from {path}: done already: {', '.join(saved.get(DONE, [])) or 'nothing'}")
            return cls(saved, path, log)
        return cls(fresh, path, log)

    def run(self, name: str, message: str, measure: Callable[[], dict[str, Any]]) -> None:
        """One section: skipped if a resumed run has it; else measured, its keys merged into the results and the file
        written at once."""
        if name in self.results[DONE]:
            self.log(f"{message}: done in the resumed run")
            return
        self.log(message)
        self.results.update(measure())
        self.results[DONE].append(name)
        self.save()

    def save(self) -> None:
        self.results["elapsed_s"] = self._elapsed_before + time.perf_counter() - self._started
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps(self.results, indent=1, default=str))
        scratch.replace(self.path)  # whole or not at all: a crash while writing keeps the previous file

    def finish(self) -> dict[str, Any]:
        """The complete results (the partial file removed: the caller writes them where they belong)."""
        self.results["elapsed_s"] = self._elapsed_before + time.perf_counter() - self._started
        self.path.unlink(missing_ok=True)
        return {key: value for key, value in self.results.items() if key != DONE}

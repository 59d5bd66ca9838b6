"""Shrinking: a failing run's scenario cut down to the shortest task list that still fails with its seed."""

from __future__ import annotations

import dataclasses

from simulator.harness import Harness
from simulator.run import run_scenario
from simulator.scenario import Scenario


def shrink(harness: Harness, scenario: Scenario) -> Scenario:
    """The shortest task list (removing one task at a time) that still fails with the same seed."""
    current = scenario
    changed = True
    while changed:
        changed = False
        for index in range(len(current.tasks)):
            candidate = dataclasses.replace(current, tasks=current.tasks[:index] + current.tasks[index + 1 :])
            if run_scenario(harness, candidate).failures:
                current, changed = candidate, True
                break
    return current

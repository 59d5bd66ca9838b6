"""The REPORT line's "Max Memory Used" is measured: each packaged function run in a process of its own over the
events the cost model prices for it (benchmarks.measure.max_memory). Shape and counts only, never a size bound."""

from __future__ import annotations

import math

from benchmarks._child import EXPECTED, KINDS, MEMORY_FUNCTIONS
from benchmarks.measure import max_memory
from infra.constructs.reconciler_function import RUNTIME_DIR
from infra.runtime_asset import staged_runtime


def test_each_function_is_measured_from_the_asset_over_its_priced_events():
    found = max_memory(per_kind=2)
    assert set(found) == set(MEMORY_FUNCTIONS)
    asset = str(staged_runtime(RUNTIME_DIR))
    for function, run in found.items():
        assert run["function"] == function
        assert run["reconciler_from"].startswith(asset), "the packaged handler ran, not the checkout's"
        assert run["max_memory_mb"] == math.ceil(run["peak_rss_kb"] / 1024) and run["peak_rss_kb"] > 0
    reconciler = found["reconciler"]
    assert reconciler["invocations"] == 2 * len(KINDS)
    assert reconciler["cases"] == EXPECTED  # every kind the cost model prices, each on its own path
    assert (reconciler["clients"], found["hold"]["clients"], found["balance_events"]["clients"]) == (3, 1, 2)
    assert found["hold"]["cases"] == {"hold": "held"} and found["hold"]["invocations"] == 2
    assert found["balance_events"]["cases"] == {"no_crossing": "0", "crossing": "0"}  # no record failed

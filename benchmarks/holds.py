"""The hold API's latency per call, as the pipeline sees it: Lambda's Invoke over real HTTP to the local stack, whose
moto server runs the hold function's handler in-process (emulator/functions.py).

What it measures is the local stack: moto's DynamoDB (one strong read and one transaction per hold) behind a werkzeug
server, and our handler. It is not a claim about AWS, where Invoke adds Lambda's own overhead and DynamoDB answers
in single-digit milliseconds; it shows the handler's share and compares the three kinds of call.

    python -m benchmarks.holds [CALLS] [REPETITIONS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from emulator.server import moto_server
from emulator.stack import provision_stack
from reconciler.config import RuntimeConfig
from reconciler.domain.ledger import adjustment_entry, iso_timestamp
from reconciler.repository.dynamodb import DynamoDBStore

KINDS = ("hold", "already-held", "release")
EXPECTED_STATUS = {"hold": "held", "already-held": "already-held", "release": "released"}  # the hold API's answers


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _calls(client: Any, function: str, calls: int, repetition: int) -> dict[str, list[float]]:
    """Per kind, the wall time of each call in milliseconds; a fresh job for every hold."""
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for number in range(calls):
        job = {"jobId": f"bench-{repetition}-{number}", "userId": "bench-user"}
        for kind, request in (
            ("hold", {"operation": "hold", **job, "model": "test", "credits": 1}),
            ("already-held", {"operation": "hold", **job, "model": "test", "credits": 1}),
            ("release", {"operation": "release", **job}),
        ):
            started = time.perf_counter()
            answer = json.loads(client.invoke(FunctionName=function, Payload=json.dumps(request).encode())["Payload"].read())
            times[kind].append((time.perf_counter() - started) * 1000)
            if answer.get("status") != EXPECTED_STATUS[kind]:
                raise RuntimeError(f"a {kind} call answered {answer}")
    return times


def hold_latency(calls: int = 200, repetitions: int = 3) -> dict:
    """p50 and p99 per kind of call: the median over repetitions (each on a fresh local stack) and their range."""
    per_repetition: list[dict[str, list[float]]] = []
    for repetition in range(repetitions):
        with moto_server() as endpoint:
            stack = provision_stack(endpoint, "dev", operable=True)
            store = DynamoDBStore(stack.client("dynamodb"), RuntimeConfig.from_env(stack.resources.runtime_environment()))
            store.commit_adjustment(adjustment_entry("bench-user", calls * 10, "bench", f"bench-{repetition}", "bench", iso_timestamp()))
            client = stack.client("lambda")
            _calls(client, f"cc-reconciler-reserve-{stack.stage}", 5, -1 - repetition)  # warm: the first call imports the handler
            per_repetition.append(_calls(client, f"cc-reconciler-reserve-{stack.stage}", calls, repetition))
    summary = {}
    for kind in KINDS:
        p50s = [percentile(times[kind], 0.5) for times in per_repetition]
        p99s = [percentile(times[kind], 0.99) for times in per_repetition]
        summary[kind] = {
            "p50_ms": statistics.median(p50s),
            "p50_range": [min(p50s), max(p50s)],
            "p99_ms": statistics.median(p99s),
            "p99_range": [min(p99s), max(p99s)],
        }
    return {"calls": calls, "repetitions": repetitions, "summary": summary}


def main(argv: list[str]) -> int:
    calls = int(argv[0]) if argv else 200
    repetitions = int(argv[1]) if len(argv) > 1 else 3
    print(json.dumps(hold_latency(calls, repetitions), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Smoke test: one real `video.rendered` event for `smoke-test-user`, checked end to end, then undone.

    python scripts/smoke-test.py --env dev|staging|prod|local [--timeout 60] [--endpoint-url URL]

Publishes a 1-second render on model `test` (1 credit) with jobId `smoke-<uuid>`, waits for the ledger
entry `<jobId>#charge` and the balance change, then gives the credit back with an adjustment that
references the job (same transaction path as `reconciler adjust`), so the books stay balanced and
nothing is deleted. Exits non-zero with one clear line when anything is off.

`--env local` starts its own local stack (or uses the running one, from `reconciler local up`, with
--endpoint-url); there is no Lambda locally, so it drives the local invoker while waiting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from reconciler.ops.adjustments import Adjuster  # noqa: E402
from reconciler.ops.aws import Target, local_state_path  # noqa: E402

USER = "smoke-test-user"
EXPECTED_CHARGE = 1  # 1 s on model `test`: 1 credit at every stage's price of `test`


class SmokeFailure(Exception):
    pass


def run(target: Target, timeout: float, drain=None, log=print) -> dict:
    store = target.store
    job_id = f"smoke-{uuid.uuid4()}"
    before = (store.get_balance(USER) or {}).get("remaining") or 0
    event = {"jobId": job_id, "userId": USER, "seconds": 1, "model": "test"}
    response = target.client("events").put_events(
        Entries=[{"Source": "video.generation", "DetailType": "video.rendered", "Detail": json.dumps(event)}]
    )
    if response.get("FailedEntryCount"):
        raise SmokeFailure(f"EventBridge refused the test event: {response['Entries']}")
    log(f"published video.rendered for {job_id}; waiting up to {timeout:.0f} s")

    deadline = time.monotonic() + timeout
    charge = None
    while charge is None:
        if drain is not None:
            drain()
        charge = store.get_ledger_entry(f"{job_id}#charge")
        if charge is None:
            if time.monotonic() > deadline:
                raise SmokeFailure(f"no ledger entry {job_id}#charge after {timeout:.0f} s (check the DLQ: reconciler dlq list)")
            time.sleep(1 if drain is None else 0.2)
    after = (store.get_balance(USER) or {}).get("remaining") or 0
    problems = []
    if charge.signed_amount != -EXPECTED_CHARGE:
        problems.append(f"charge is {charge.signed_amount}, expected {-EXPECTED_CHARGE}")
    if after - before != charge.signed_amount:
        problems.append(f"balance moved {after - before:+d} ({before} -> {after}), the ledger says {charge.signed_amount:+d}")

    # Undo the charge whatever the checks found: the smoke test must leave the books as it found them.
    refund = Adjuster(store).adjust(USER, -charge.signed_amount, f"smoke test cleanup of {job_id}", job_id, target.actor)
    log(f"charged {charge.signed_amount:+d} ({before} -> {after}); compensated with {refund.entry.ledger_id}")
    if problems:
        raise SmokeFailure("; ".join(problems))
    return {"jobId": job_id, "charged": -charge.signed_amount, "balanceBefore": before, "compensation": refund.entry.ledger_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=["dev", "staging", "prod", "local"])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--endpoint-url", help="with --env local: the running local stack's endpoint")
    args = parser.parse_args(argv)
    try:
        with ExitStack() as resources:
            drain = None
            if args.env == "local":
                from reconciler.local.stack import LocalStack, local_stack

                if args.endpoint_url:
                    stack = LocalStack.load(local_state_path())
                    stack.endpoint = args.endpoint_url
                    stack.activate()
                else:
                    stack = resources.enter_context(local_stack("dev"))
                target = Target(stack.stage, stack.endpoint, stack)
                drain = stack.invoker().drain
            else:
                target = Target.resolve(args.env)
            result = run(target, args.timeout, drain)
    except SmokeFailure as failure:
        print(f"SMOKE TEST FAILED: {failure}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - one line for any environment problem
        print(f"SMOKE TEST FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"smoke test passed: {json.dumps(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

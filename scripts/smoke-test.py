#!/usr/bin/env python3
"""Smoke test: one real `video.rendered` event for `smoke-test-user`, checked end to end, then undone.

    python scripts/smoke-test.py --env dev|staging|prod|local [--timeout 60] [--endpoint-url URL] [--stage STAGE]

Publishes a 1-second render on model `test` (1 credit) with jobId `smoke-<uuid>`, waits for the ledger
entry `<jobId>#charge` and the balance change, then gives the credit back with an adjustment that
references the job (same transaction path as `reconciler adjust`), so the books stay balanced and
nothing is deleted. Exits non-zero with one clear line when anything is off.

`--env local` starts its own local stack (or uses the running one, from `reconciler local up`, with
--endpoint-url; `--stage` names its stage, dev by default); there is no Lambda locally, so it drives the
local invoker while waiting. Progress goes to stderr, the result line to stdout.

Runs from any Python 3.11+: without boto3 and the reconciler's dependencies it re-runs itself with the
checkout's .venv/bin/python when there is one, and otherwise says how to get them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runtime"))


def _ensure_dependencies() -> None:
    try:
        import boto3  # noqa: F401
        import rich  # noqa: F401
    except ImportError as error:
        venv_python = REPO / ".venv" / "bin" / "python"
        in_venv = Path(sys.prefix).resolve() == (REPO / ".venv").resolve()
        if venv_python.exists() and not in_venv and not os.environ.get("SMOKE_TEST_REEXEC"):
            os.environ["SMOKE_TEST_REEXEC"] = "1"
            os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])  # noqa: S606 - re-run under the checkout's venv, same arguments
        print(
            f"SMOKE TEST NOT RUN: this Python ({sys.executable}) lacks {error.name}; run `make bootstrap` and use "
            f"{venv_python}, or `pip install --require-hashes -r {REPO / 'requirements.txt'}` then "
            f"`pip install --no-deps -e {REPO}`",
            file=sys.stderr,
        )
        sys.exit(2)


_ensure_dependencies()

from reconciler.ops.adjustments import Adjuster  # noqa: E402 - only once the dependencies are known to be there
from reconciler.ops.target import Target, local_state_path  # noqa: E402


def progress(message: str) -> None:
    print(f"[smoke] {message}", file=sys.stderr, flush=True)


USER = "smoke-test-user"
EXPECTED_CHARGE = 1  # 1 s on model `test`: 1 credit at every stage's price of `test`


class SmokeFailure(Exception):
    pass


def run(target: Target, timeout: float, drain=None, log=progress) -> dict:
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

    from reconciler.domain.ledger import job_ledger_id
    from reconciler.ops.jobs import job_entries

    charge_id = job_ledger_id(job_id, "charge")
    deadline = time.monotonic() + timeout
    charge = None
    while charge is None:
        if drain is not None:
            drain()
        # The charge is a UserLedger posting at the job's settledAt (docs/ledger.md): found through the job.
        job = store.get_job(job_id)
        if job is not None and job.settled_at:
            charge = next((e for e in job_entries(store, job_id, job.user_id, job.settled_at) if e.ledger_id == charge_id), None)
        if charge is None:
            if time.monotonic() > deadline:
                raise SmokeFailure(f"no ledger entry {charge_id} after {timeout:.0f} s (check the DLQ: reconciler dlq list)")
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
    parser.add_argument("--stage", default="dev", help="with --env local: the running local stack's stage (default dev)")
    args = parser.parse_args(argv)
    try:
        with ExitStack() as resources:
            drain = None
            if args.env == "local":
                from reconciler.local.stack import LocalStack, local_stack

                if args.endpoint_url:
                    progress(f"using the running local {args.stage} stack at {args.endpoint_url}")
                    stack = LocalStack.load(local_state_path(args.stage))
                    stack.endpoint = args.endpoint_url
                    stack.activate()
                else:
                    progress("starting a local dev stack (synthesis and moto: about 20 s) ...")
                    stack = resources.enter_context(local_stack("dev"))
                target = Target.resolve(stack.stage, stack.endpoint)
                invoker = stack.invoker()

                def drain() -> int:
                    with contextlib.redirect_stdout(sys.stderr):  # the handler's logs are not the result
                        return invoker.drain()
            else:
                progress(f"checking the deployed {args.env} stage")
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

#!/usr/bin/env python3
"""Smoke test: one synthetic render of the smoke test's own user, checked end to end, invisible to the product.

    python scripts/smoke-test.py --env dev|staging|prod|local [--timeout 60] [--endpoint-url URL] [--stage STAGE]

Puts one `video.rendered` (model `test`, 1 s: 1 credit) for `smoke-test-user`, job `smoke-test-<uuid>`, on the
default bus under the source `reconciler.smoke-test`. The stage's events rule admits that source, so the event
takes the real path: the rule, the function (asynchronous invocation, its retries and on-failure DLQ), one
settlement transaction on Jobs, Credits and UserLedger. Nothing else acts on it: consumers of the pipeline's
events match the source `video.generation`, the archive keeps only those, the function settles that source for
`smoke-test-user` only, and the balance-events function never publishes that user's balance. The test waits for
the job to be settled by its event with a 1-credit charge posting, and for the balance to have moved by it.

It writes nothing but its event (in CI it runs under a role that may put only those and read only the smoke user's
items). Each run leaves, as docs/operations.md ("Smoke test") says: the job's Jobs item, its charge posting in
UserLedger, and one credit less in the smoke user's float. A deployed stage's float is funded once by an operator;
a run refuses to start without a credit to charge, and warns when fewer than 100 remain. `--env local` uses the
local stack of `--stage` (dev by default) that `python -m emulator up` runs (its endpoint overridden by
--endpoint-url), or starts one itself in the background and stops it at the end; it funds the float there itself,
and asks the stack to deliver while waiting (`python -m emulator deliver`), since a stack saved without `up`
running delivers nothing by itself. Progress goes to stderr, the result line to stdout; any failure is one line and
a non-zero exit.

Runs from any Python 3.11+: without boto3 and the reconciler's package it re-runs itself with the checkout's
.venv/bin/python when there is one, and otherwise says how to get them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ensure_dependencies() -> None:
    try:
        import boto3  # noqa: F401
        import rich  # noqa: F401

        import reconciler  # noqa: F401
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

from reconciler.contract import SMOKE_TEST_DETAIL_TYPE, SMOKE_TEST_EVENT_SOURCE, SMOKE_TEST_JOB_PREFIX, SMOKE_TEST_USER_ID  # noqa: E402 - once the dependencies are known to be there
from reconciler.ops.target import Target, local_state_path  # noqa: E402


def progress(message: str) -> None:
    print(f"[smoke] {message}", file=sys.stderr, flush=True)


USER = SMOKE_TEST_USER_ID
EXPECTED_CHARGE = 1  # 1 s on model `test`: 1 credit at every stage's price of `test`
LOW_FLOAT = 100  # warn when the float is this low: about as many deploys remain
LOCAL_FLOAT = 10_000


class SmokeFailure(Exception):
    pass


def fund_command(stage: str) -> str:
    return (
        f"reconciler --stage {stage} adjust {USER} {LOCAL_FLOAT} --reason 'smoke test float' --reference smoke-float-$(date +%Y%m%d) "
        "--create-user --yes-large"
    )


def run(store, events, stage: str, timeout: float, drain=None, log=progress) -> dict:
    """Puts one synthetic render and checks its settlement; `store` reads (OperationsStore), `events` puts."""
    before = remaining(store)
    if before is None or before < EXPECTED_CHARGE:
        raise SmokeFailure(f"{USER} has {before or 0} credits in {stage}; fund its float once: {fund_command(stage)}")
    if before < LOW_FLOAT:
        log(f"warning: {USER} has {before} credits left, about as many runs: {fund_command(stage)}")
    job_id = f"{SMOKE_TEST_JOB_PREFIX}{uuid.uuid4()}"
    detail = {"jobId": job_id, "userId": USER, "seconds": 1, "model": "test"}
    response = events.put_events(Entries=[{"Source": SMOKE_TEST_EVENT_SOURCE, "DetailType": SMOKE_TEST_DETAIL_TYPE, "Detail": json.dumps(detail)}])
    if response.get("FailedEntryCount"):
        raise SmokeFailure(f"EventBridge refused the smoke event: {response['Entries']}")
    event_id = response["Entries"][0]["EventId"]
    log(f"published a {SMOKE_TEST_EVENT_SOURCE} video.rendered for {job_id}; waiting up to {timeout:.0f} s")
    charge = wait_for_charge(store, job_id, event_id, timeout, drain)
    after = remaining(store) or 0
    problems = []
    if charge.signed_amount != -EXPECTED_CHARGE:
        problems.append(f"charge is {charge.signed_amount}, expected {-EXPECTED_CHARGE}")
    if after - before != charge.signed_amount:
        problems.append(f"balance moved {after - before:+d} ({before} -> {after}), the ledger says {charge.signed_amount:+d}")
    if problems:
        raise SmokeFailure("; ".join(problems))
    log(f"settled by its event: charged {charge.signed_amount:+d} ({before} -> {after})")
    return {"jobId": job_id, "eventId": event_id, "charged": -charge.signed_amount, "balanceBefore": before, "balanceAfter": after}


def wait_for_charge(store, job_id: str, event_id: str, timeout: float, drain=None):
    """The job's charge posting, once the job is settled by `event_id` (UserLedger at the job's settledAt)."""
    from reconciler.domain.ledger import job_ledger_id

    charge_id = job_ledger_id(job_id, "charge")
    deadline = time.monotonic() + timeout
    while True:
        if drain is not None:
            drain()
        job = store.get_job(job_id)
        if job is not None and job.settled_at:
            if job.settled_by_event != event_id:
                raise SmokeFailure(f"{job_id} was settled by {job.settled_by_event}, not by the smoke event {event_id}")
            charge = next((e for e in store.postings_at(USER, job.settled_at) if e.ledger_id == charge_id), None)
            if charge is None:
                raise SmokeFailure(f"{job_id} is settled but has no posting {charge_id}")
            return charge
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{job_id} not settled after {timeout:.0f} s (check the DLQ: reconciler dlq list)")
        time.sleep(1 if drain is None else 0.2)


def remaining(store) -> int | None:
    """The smoke user's credits (None: it has no balance)."""
    balance = store.get_balance(USER)
    return balance.remaining if balance else None


def fund_local_float(target: Target) -> None:
    """Locally only (a throw-away stack, no IAM): the float an operator gives a deployed stage once."""
    if (remaining(target.store) or 0) < EXPECTED_CHARGE:
        target.adjuster().adjust(USER, LOCAL_FLOAT, "smoke test float", f"smoke-float-{uuid.uuid4()}", "local:smoke-test")
        progress(f"funded the local float of {USER} with {LOCAL_FLOAT} credits")


def emulator(*args: str, **options) -> subprocess.CompletedProcess:
    """`python -m emulator ARGS` of this checkout (the local stack's command line)."""
    return subprocess.run([sys.executable, "-m", "emulator", *args], cwd=REPO, capture_output=True, text=True, timeout=300, **options)


@contextmanager
def local_stack(stage: str, endpoint_url: str | None) -> Iterator[tuple[Target, str]]:
    """The running local stack of `stage` and its endpoint; or, when none runs and no endpoint is given, one that
    `python -m emulator up` starts in the background, with a state file of its own, stopped on exit."""
    if endpoint_url or local_state_path(stage).exists():
        target = Target.resolve(stage, endpoint_url, use_local=True)
        progress(f"using the running local {stage} stack at {target.endpoint_url}")
        yield target, target.endpoint_url or ""
        return
    progress(f"starting a local {stage} stack: python -m emulator up (synthesis and moto: about 20 s) ...")
    with tempfile.TemporaryDirectory(prefix="smoke-test-") as state_dir:
        os.environ["RECONCILER_LOCAL_STATE_DIR"] = state_dir
        command = [sys.executable, "-m", "emulator", "--stage", stage, "up"]
        up = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while not local_state_path(stage).exists():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise SmokeFailure("`python -m emulator up` did not start a local stack")
                time.sleep(0.2)
            target = Target.resolve(stage, use_local=True)
            yield target, target.endpoint_url or ""
        finally:
            emulator("--stage", stage, "down")
            up.wait(timeout=30)


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
                target, endpoint = resources.enter_context(local_stack(args.stage, args.endpoint_url))
                fund_local_float(target)

                def drain() -> None:
                    # The handler's logs go to its stderr, not to the result.
                    emulator("--stage", target.stage, "--endpoint-url", endpoint, "--no-progress", "deliver", stdout=None)
            else:
                progress(f"checking the deployed {args.env} stage")
                target = Target.resolve(args.env)
            result = run(target.store, target.client("events"), target.stage, args.timeout, drain)
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

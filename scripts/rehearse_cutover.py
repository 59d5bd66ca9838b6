#!/usr/bin/env python3
"""`make rehearse-cutover`: the takeover from v1 rehearsed on the local stack (moto on 127.0.0.1), by the commands an
operator types (docs/migration.md), against a v1 stand-in that behaves as v1's runbook describes it.

    1. v1 runs: users funded by v1's emergency adjustments (`manual-adj-…` Ledger items, Credits `{userId, remaining}`),
       the pipeline marks jobs rendered or failed and publishes their events, some twice; the stand-in (benchmarks/
       baseline_v1.py: separate reads and writes, no transaction, no condition) settles them on several threads, so
       concurrent updates of one user's balance are lost.
    2. Shadow, deployed (docs/migration.md step 1b): its resources from the synthesized shadow template beside v1's
       (`emulator/shadow.py`), `reconciler shadow start`; each batch is published on the local bus, whose two rules
       deliver every event to v1's stand-in and to the shadow function (run in-process, as the local stack runs the
       reconciler), which decides it before v1 settles it; then `shadow report --deployed`.
    3. Cutover at T: v1 stops; events keep arriving and are kept (the archive's stand-in: a file, as an EventBridge
       archive would keep them); `reconciler migrate --cutover T` (dry run, then --apply with the opening corrections);
       v2 is enabled: the kept events and those still arriving go to v2 (`reconciler local send`), some of them
       redeliveries of events v1 settled; `reconciler audit`.
    4. The count: every job settled exactly once (by v1 before T or by v2 after it, never both), no event lost, the
       opening differences named and corrected, the books clean. Exit 0 only if all hold.

What it cannot rehearse here: the CloudFormation import itself (moto does not run IMPORT change sets; the local stack
is provisioned from the templates, under v1's names, which stands in for the adopted tables) and EventBridge archives
(moto has no replay: the kept events are sent again by `local send`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "runtime")]

from benchmarks.baseline_v1 import V1Baseline  # noqa: E402
from emulator.delivery import handler_output_to  # noqa: E402
from emulator.server import LOCAL_ENV, moto_server  # noqa: E402
from emulator.shadow import LocalShadow, provision_shadow, shadow_templates  # noqa: E402
from emulator.stack import provision_stack  # noqa: E402
from reconciler.domain.ledger import iso_timestamp  # noqa: E402
from reconciler.ops.target import STATE_DIR_ENV  # noqa: E402

STAGE = "dev"
MODEL = "standard-v1"


class Rehearsal:
    def __init__(self, endpoint: str, work: Path, seed: int) -> None:
        self.stack = provision_stack(endpoint, STAGE)
        self.work = work
        self.random = random.Random(seed)  # noqa: S311 - a seeded run replays; nothing secret
        self.stack.save(work / "state" / f"{STAGE}.json")
        self.env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")}
        self.env.update({**LOCAL_ENV, STATE_DIR_ENV: str(work / "state"), "PYTHONPATH": ""})
        self.dynamodb = self.stack.client("dynamodb")
        self.events_sent: list[dict] = []  # every event the pipeline published, in order
        self.typed: list[str] = []

    # --- the operator's commands ----------------------------------------------------------------

    def reconciler(self, *args: str, expect: tuple[int, ...] = (0,)) -> Any:
        command = [str(Path(sys.executable).parent / "reconciler"), "--local", "--stage", STAGE, "--no-progress", "--json", *args]
        self.typed.append("reconciler --local " + " ".join(args))
        done = subprocess.run(command, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode not in expect:
            raise SystemExit(f"`{' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def emulator(self, *args: str) -> Any:
        """`python -m emulator ARGS` against this rehearsal's stack (sending events as the bus would)."""
        command = [sys.executable, "-m", "emulator", "--stage", STAGE, "--no-progress", "--json", *args]
        self.typed.append("python -m emulator " + " ".join(args))
        done = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"`python -m emulator {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    # --- v1's world -----------------------------------------------------------------------------

    def fund(self, users: list[str]) -> None:
        for number, user in enumerate(users):
            amount = 500 + 10 * number
            stamp = 1_700_000_000 + number
            self.dynamodb.put_item(
                TableName=f"Ledger-{STAGE}",
                Item={
                    "ledgerId": {"S": f"manual-adj-{stamp}"},
                    "userId": {"S": user},
                    "timestamp": {"S": "2026-11-01T00:00:00.000Z"},
                    "type": {"S": "credit"},
                    "amount": {"N": str(amount)},
                    "description": {"S": "Manual emergency adjustment"},
                    "reference": {"S": f"MANUAL-{stamp}"},
                },
            )
            self.dynamodb.put_item(TableName=f"Credits-{STAGE}", Item={"userId": {"S": user}, "remaining": {"N": str(amount)}})

    def finish_jobs(self, prefix: str, users: list[str], count: int) -> list[dict]:
        """The pipeline: each job rendered (or failed), its Jobs item marked, its event published; some published twice."""
        events = []
        for number in range(count):
            job, user = f"{prefix}-{number:03d}", self.random.choice(users)
            failed = self.random.random() < 0.15
            now = iso_timestamp()
            self.dynamodb.put_item(
                TableName=f"Jobs-{STAGE}",
                Item={"jobId": {"S": job}, "userId": {"S": user}, "status": {"S": "failed" if failed else "rendered"}, "updatedAt": {"S": now}},
            )
            detail: dict[str, Any] = {"jobId": job, "userId": user}
            if not failed:
                detail.update(seconds=self.random.choice([2, 5, 8, 10]), model=MODEL)
            event = {"id": f"ev-{job}", "source": "video.generation", "detail-type": "video.failed" if failed else "video.rendered", "detail": detail}
            events.append(event)
            if self.random.random() < 0.1:
                events.append(dict(event))  # a redelivery: the same event id
        self.events_sent.extend(events)
        return events

    def write(self, name: str, events: list[dict]) -> Path:
        path = self.work / name
        path.write_text("".join(json.dumps(event) + "\n" for event in events))
        return path

    def deploy_shadow(self) -> LocalShadow:
        """`make deploy-shadow`, locally: the shadow's own resources from its synthesized template, beside v1's."""
        return provision_shadow(shadow_templates(STAGE), STAGE, self.stack.session(), self.stack.endpoint)

    def publish(self, events: list[dict]) -> None:
        """The pipeline puts each event on the bus; every rule of v1's pattern receives it (v1's and the shadow's)."""
        refused = [entry for entry in self.stack.publish_entries(events) if entry.get("ErrorCode")]
        if refused:
            raise SystemExit(f"the local bus refused {len(refused)} events: {refused[0]}")

    def shadow_decides(self, shadow: LocalShadow) -> int:
        """The shadow function on what its rule delivered (in this process, with its template's environment, as a new
        container); the number of events it decided."""
        saved = dict(os.environ)
        os.environ.update({**LOCAL_ENV, **shadow.environment, "AWS_ENDPOINT_URL": self.stack.endpoint})
        from reconciler.bootstrap import reset_container

        reset_container()
        try:
            invoker = shadow.invoker(self.stack.client("sqs"))
            with (self.work / "shadow-function.log").open("a") as log, handler_output_to(log):  # its CloudWatch Logs
                invoker.drain()
        finally:
            reset_container()
            os.environ.clear()
            os.environ.update(saved)
        failed = [r for r in invoker.results if "error" in r]
        if failed:
            raise SystemExit(f"the shadow function failed on {len(failed)} events: {failed[0]['error']}")
        return len(invoker.results)

    def v1_receives(self) -> list[dict]:
        """What v1's rule delivered (the local stack's rule, to its invoke queue), taken off the queue for v1's stand-in."""
        sqs, url, received = self.stack.client("sqs"), self.stack.resources.invoke_queue_url, []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return received

    def v1_runs_beside_the_shadow(self, users: list[str], jobs: int) -> tuple[dict[str, int], dict]:
        """Step 1b: the shadow deployed, a baseline, three batches decided by the shadow and settled by v1, the report;
        how many events v1 and the shadow each received."""
        shadow, directory = self.deploy_shadow(), str(self.work / "shadow")
        self.typed.append("make deploy-shadow")
        self.reconciler("shadow", "start", "--dir", directory)
        counts = {"decided": 0, "v1Received": 0}
        for batch in range(3):
            events = self.finish_jobs(f"v1b{batch}", users, jobs // 3)
            self.publish(events)
            counts["decided"] += self.shadow_decides(shadow)
            delivered = self.v1_receives()
            counts["v1Received"] += len(delivered)
            self.v1_settles(delivered)
        return counts, self.reconciler("shadow", "report", "--deployed", "--dir", directory, expect=(0, 1))

    def v1_settles(self, events: list[dict], threads: int = 8) -> None:
        v1 = V1Baseline(self.dynamodb, f"Jobs-{STAGE}", f"Credits-{STAGE}", f"Ledger-{STAGE}")
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(v1.process, events))

    # --- the count --------------------------------------------------------------------------------

    def scan(self, table: str) -> list[dict]:
        items, request = [], {"TableName": f"{table}-{STAGE}", "ConsistentRead": True}
        while True:
            page = self.dynamodb.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self, cutover: str) -> dict[str, Any]:
        jobs = {e["detail"]["jobId"]: e["detail-type"] for e in self.events_sent}
        charges: dict[str, int] = {}
        for item in self.scan("Ledger") + self.scan("UserLedger"):
            reference = item.get("reference", {}).get("S", "")
            if reference in jobs and item["type"]["S"] == "debit":
                charges[reference] = charges.get(reference, 0) + 1
        records = {item["jobId"]["S"]: item for item in self.scan("Settlements")}
        processed_by_v1 = {item["jobId"]["S"] for item in self.scan("Jobs") if "processedAt" in item and item["processedAt"]["S"] <= cutover}
        settled_by_v2 = {job for job, record in records.items() if not record.get("settledByEvent", {}).get("S", "").startswith("v1-cutover:")}
        lost = sorted(job for job in jobs if job not in processed_by_v1 and job not in settled_by_v2)
        twice = sorted(job for job in jobs if (job in processed_by_v1 and job in settled_by_v2) or charges.get(job, 0) > 1)
        rendered_uncharged = sorted(job for job, kind in jobs.items() if kind == "video.rendered" and charges.get(job, 0) != 1)
        return {
            "jobs": len(jobs),
            "events": len(self.events_sent),
            "settledByV1": len(processed_by_v1 & set(jobs)),
            "settledByV2": len(settled_by_v2 & set(jobs)),
            "eventsLost": len(lost),
            "settledTwice": len(twice),
            "renderedNotChargedOnce": len(rendered_uncharged),
            "examples": {"lost": lost[:5], "twice": twice[:5], "renderedNotChargedOnce": rendered_uncharged[:5]},
        }


def rehearse(work: Path, users: int, jobs: int, seed: int) -> dict[str, Any]:
    with moto_server() as endpoint:
        r = Rehearsal(endpoint, work, seed)
        names = [f"user-{n:02d}" for n in range(users)]
        r.fund(names)
        # v1 runs, the deployed shadow beside it decides each event first (read-only)
        received, shadow_report = r.v1_runs_beside_the_shadow(names, jobs)
        # Cutover: v1 stops at T; events keep arriving and are kept (the archive)
        time.sleep(0.01)
        cutover = iso_timestamp()
        time.sleep(0.01)
        kept = r.finish_jobs("gap", names, jobs // 4)
        redelivered = r.random.sample([e for e in r.events_sent if e["id"].startswith("ev-v1b")], k=min(5, jobs // 3))
        kept += redelivered  # the archive's overlap: events v1 settled before T
        dry = r.reconciler("migrate", "--cutover", cutover, expect=(0, 1))  # 1: opening differences to correct
        reason = "takeover from v1 (rehearsal)"
        applied = r.reconciler("migrate", "--cutover", cutover, "--apply", "--actor", "rehearsal", "--reason", reason, "--trust", "ledger")
        again = r.reconciler("migrate", "--cutover", cutover, "--apply", "--actor", "rehearsal", "--reason", reason, "--trust", "ledger")
        # v2 enabled: the kept events, then more while events keep arriving
        outcomes = r.emulator("send", str(r.write("kept.jsonl", kept)))
        later = r.finish_jobs("v2", names, jobs // 4)
        outcomes += r.emulator("send", str(r.write("later.jsonl", later)))
        audit = r.reconciler("audit", "--min-age", "0", expect=(0, 1))
        counted = r.count(cutover)
        lost_updates = [d for d in shadow_report["differences"] if d["scope"] == "user" and "lost updates" in d["named"]]
        summary = {
            **counted,
            "cutover": cutover,
            "shadow": {
                **received,
                "differences": len(shadow_report["differences"]),
                "lostUpdateUsers": len(lost_updates),
                **shadow_report["totals"],
            },
            "migrate": {
                "dryRun": dry["counts"],
                "applied": applied["counts"],
                "rerun": again["counts"],
                "openingDifferences": len(applied["opening"]),
                "named": [f"{d['userId']}: {d['named']}" for d in applied["opening"]][:3],
                "corrections": len([c for c in applied["corrections"] if c["status"] == "fixed"]),
                "correctionsOnRerun": len(again["corrections"]),
            },
            "v2Outcomes": {kind: sum(1 for o in outcomes if o["outcome"] == kind) for kind in sorted({o["outcome"] for o in outcomes})},
            "auditDiscrepanciesAfter": len(audit["discrepancies"]),
            "commands": r.typed,
        }
        summary["ok"] = (
            counted["eventsLost"] == 0
            and counted["settledTwice"] == 0
            and counted["renderedNotChargedOnce"] == 0
            and summary["auditDiscrepanciesAfter"] == 0
            and summary["migrate"]["corrections"] == summary["migrate"]["openingDifferences"]
            and summary["migrate"]["correctionsOnRerun"] == 0
            and len(lost_updates) == summary["migrate"]["openingDifferences"]
        )
        return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=60, help="jobs v1 settles (then a quarter in the gap and a quarter after)")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--summary", type=Path, help="also write the summary here (JSON)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rehearse-cutover-") as work:
        summary = rehearse(Path(work), args.users, args.jobs, args.seed)
    text = json.dumps(summary, indent=1, default=lambda value: int(value) if isinstance(value, Decimal) else str(value))
    if args.summary:
        args.summary.write_text(text + "\n")
    print(text)
    print("rehearsal: " + ("every job settled once, no event lost, the books clean" if summary["ok"] else "FAILED"), file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

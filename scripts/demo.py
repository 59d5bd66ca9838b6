#!/usr/bin/env python3
"""`make demo`: the reconciler's main job, end to end, on the local stack, through public commands only.

1. `python -m emulator up` starts the dev stage's stack in the background (moto on 127.0.0.1, the resources
   created from the synthesized templates, the functions run as Lambda would run them);
2. opening balances are adjustments: `reconciler --local adjust USER N --create-user`;
3. jobs are held as the video pipeline holds them: Lambda Invoke of the hold function (cc-reconciler-reserve-dev);
   remaining moves to held, nothing is posted;
4. a realistic stream of events goes on the local EventBridge bus as the pipeline publishes them (a duplicate, a
   failure, a render after its failure, a job never seen, an overdraft, three malformed events): the stage's rule
   delivers them to the function, and `up` says each outcome;
5. `reconciler --local balance`, `ledger`, `audit` (every posted balance is its ledger's sum, both tables, and every
   held its open holds), `adjust` (a top-up), `balance-events` (what the Credits stream's function published);
6. credits in, as billing publishes them (source credits.billing): a purchase delivered twice and applied once, a
   grant, a refund; a direct write to a balance caught as unexplained (its alarm, its alert) and undone with
   `audit --fix --trust ledger`; `statement` and `liability --check`;
7. `dlq list`; then `python -m emulator down`.

Exits non-zero unless the books balance and exactly the three malformed events were dead-lettered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

CHECKOUT = Path(__file__).resolve().parents[1]
LOGS = CHECKOUT / ".local-stack"
STAGE = "dev"
console = Console(highlight=False)

OPENING_BALANCES = {"alice": 100, "bob": 50, "carol": 5}
HOLDS = [("job-a1", "alice", "standard-v1", 20), ("job-b1", "bob", "hd-v1", 10), ("job-c1", "carol", "hd-v1", 40)]


def rendered(job_id: str, user_id: str, seconds: Any, model: str) -> dict:
    detail = {"jobId": job_id, "userId": user_id, "seconds": seconds, "model": model}
    return {"Source": "video.generation", "DetailType": "video.rendered", "Detail": detail}


def failed(job_id: str, user_id: str, reason: str) -> dict:
    return {"Source": "video.generation", "DetailType": "video.failed", "Detail": {"jobId": job_id, "userId": user_id, "reason": reason}}


EVENT_STREAM = [
    ("alice's render, 20 held, costs ceil(7.5 s x 2) = 15: the hold goes, 15 posted", rendered("job-a1", "alice", 7.5, "standard-v1")),
    ("the same render delivered again", rendered("job-a1", "alice", 7.5, "standard-v1")),
    ("bob's render failed: his hold is released, nothing posted", failed("job-b1", "bob", "GPU out of memory")),
    ("a render of bob's job arriving after its failure", rendered("job-b1", "bob", 4, "hd-v1")),
    ("a render for a job the table never saw (no reservation)", rendered("job-a2", "alice", 3, "test")),
    ("carol's render without reservation costs more than she has", rendered("job-c2", "carol", 1, "4k-v1")),
    ("malformed: negative seconds", rendered("job-a3", "alice", -3, "test")),
    ("malformed: someone else's job", rendered("job-a1", "mallory", 1, "test")),
    ("malformed: unknown model", rendered("job-a4", "alice", 2, "no-such-model")),
]
MALFORMED = 3
# A line `up` says per delivered event (emulator/delivery.py, describe).
DELIVERED = re.compile(r"event (?P<id>\S+): (?P<type>\S+) (?P<job>\S+) -> (?P<outcome>\S+) ?(?P<detail>.*)")


class Stack:
    """The background `python -m emulator up` and the commands run against it."""

    def __init__(self, state_dir: Path) -> None:
        self.env = {**os.environ, "RECONCILER_LOCAL_STATE_DIR": str(state_dir), "RECONCILER_STAGE": STAGE}
        self.state_file = state_dir / f"{STAGE}.json"
        self.log = LOGS / "demo-up.log"
        self.process: subprocess.Popen | None = None

    def up(self, timeout: float = 180) -> dict:
        LOGS.mkdir(exist_ok=True)
        with self.log.open("w") as log:
            command = [sys.executable, "-m", "emulator", "up"]
            self.process = subprocess.Popen(command, cwd=CHECKOUT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while not self.state_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`python -m emulator up` did not start:\n{self.log.read_text()}")
            time.sleep(0.2)
        return json.loads(self.state_file.read_text())

    def down(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run([sys.executable, "-m", "emulator", "down"], cwd=CHECKOUT, env=self.env, capture_output=True, timeout=60)
            self.process.wait(timeout=30)

    def emulator(self, *args: str) -> None:
        """`python -m emulator ARGS` against the running stack (raises if it fails)."""
        done = subprocess.run([sys.executable, "-m", "emulator", *args], cwd=CHECKOUT, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"`python -m emulator {' '.join(args)}` failed: {done.stderr.strip()}")

    def reconciler(self, *args: str, check: bool = True) -> tuple[int, Any]:
        """`reconciler --local --json ARGS`: its exit code and its JSON result."""
        command = [str(Path(sys.executable).with_name("reconciler")), "--local", "--json", "--no-progress", *args]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"`reconciler {' '.join(args)}` failed: {done.stderr.strip()}")
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None

    def delivered(self, event_ids: list[str], timeout: float = 90) -> dict[str, re.Match]:
        """`up`'s line for each event, once it has delivered them all."""
        deadline = time.monotonic() + timeout
        while True:
            lines = {m["id"]: m for m in map(DELIVERED.fullmatch, self.log.read_text().splitlines()) if m}
            if all(event_id in lines for event_id in event_ids) or time.monotonic() > deadline:
                return {event_id: lines[event_id] for event_id in event_ids if event_id in lines}
            time.sleep(0.5)


def aws_client(state: dict, service: str) -> Any:
    """A client of the local stack, as the pipeline's SDK would make one (the endpoint and credentials `up` saved)."""
    session: Any = boto3.session.Session(region_name=state["region"], **state["credentials"])  # Any: typed per literal service
    return session.client(service, endpoint_url=state["endpoint"])


def seed_and_hold(stack: Stack, state: dict) -> None:
    console.rule("Seeding users: reconciler --local adjust USER N --create-user (opening balances are ledger entries too)")
    for user, credits in OPENING_BALANCES.items():
        stack.reconciler("adjust", user, str(credits), "--reason", "opening balance", "--reference", f"demo-opening-{user}", "--create-user")
        console.print(f"  {user}: {credits} credits")
    console.rule(f"Holding credits for jobs as the pipeline does: Lambda Invoke of cc-reconciler-reserve-{STAGE} (holds, nothing posted)")
    lambda_client = aws_client(state, "lambda")
    for job_id, user, model, credits in HOLDS:
        request = {"operation": "hold", "jobId": job_id, "userId": user, "model": model, "credits": credits}
        answer = json.loads(lambda_client.invoke(FunctionName=f"cc-reconciler-reserve-{STAGE}", Payload=json.dumps(request))["Payload"].read())
        if answer["status"] == "held":
            _, balance = stack.reconciler("balance", user)
            console.print(
                f"  {job_id}: held {credits} credits of {user} on {model}: remaining {balance['remaining']}, "
                f"held {balance['held']}, posted {balance['posted']}"
            )
        else:
            console.print(f"  {job_id}: {answer['status']}, nothing moved ({answer.get('credits')} asked, balance {answer.get('balance')})")


def publish_and_watch(stack: Stack, state: dict) -> int:
    console.rule("Publishing events to the local EventBridge bus (PutEvents, as the pipeline does)")
    for label, event in EVENT_STREAM:
        console.print(f"  {event['DetailType']:<15} {event['Detail']['jobId']:<7} {label}")
    events = aws_client(state, "events")
    entries = [{**event, "Detail": json.dumps(event["Detail"])} for _, event in EVENT_STREAM]
    event_ids = [entry["EventId"] for entry in events.put_events(Entries=entries)["Entries"]]
    delivered = stack.delivered(event_ids)
    outcomes = Table("event", "job", "outcome", "detail", title=f"What the function did ({stack.log.relative_to(CHECKOUT)} has every line of `up`)")
    for event_id in event_ids:
        line = delivered.get(event_id)
        outcomes.add_row(*(line.group("type", "job", "outcome", "detail") if line else ("?", "?", "not delivered", "")))
    console.print(outcomes)
    console.print("  the function's own log lines and metrics: reconciler --local logs tail, reconciler --local metrics")
    return len(delivered)


def show_books(stack: Stack) -> bool:
    """Every user's balance and ledger, and the audit `reconciler audit` runs; True when the books balance."""
    console.rule("Balances and ledgers: reconciler --local balance USER, reconciler --local ledger USER (both tables, merged)")
    for user in OPENING_BALANCES:
        _, balance = stack.reconciler("balance", user)
        _, entries = stack.reconciler("ledger", user)
        ledger_sum = sum(entry["amount"] for entry in entries)
        title = f"{user}: remaining {balance['remaining']}, held {balance['held']}, posted {balance['posted']} (ledger sum {ledger_sum})"
        ledger = Table("time (UTC)", "type", "amount", "reference", "description", title=title)
        for entry in entries:
            ledger.add_row(entry["timestamp"][11:23], entry["type"], str(abs(entry["amount"])), entry["reference"], entry["description"])
        console.print(ledger)
    console.rule("The audit: reconciler --local audit (posted = ledger sum, both tables; held = the open holds)")
    code, report = stack.reconciler("audit", check=False)
    for discrepancy in report["discrepancies"]:
        console.print(f"  [red]{discrepancy['userId']}: {', '.join(discrepancy['kinds'])} (difference {discrepancy['difference']:+d})[/red]")
    if code == 0:
        console.print("  no discrepancies")
    return code == 0


def show_balance_events(stack: Stack, timeout: float = 60) -> None:
    """carol went low, exhausted and overdrawn above; an operator's top-up restores her. What the balance-events
    function (on the Credits stream, as `up` runs it) published, from its history table."""
    console.rule("Balance events: the Credits stream -> cc-reconciler-balance-events -> EventBridge")
    _, result = stack.reconciler("adjust", "carol", "50", "--reason", "top-up after overdraft", "--reference", "demo-topup-carol")
    console.print(f"  top-up: carol {result['balanceBefore']} -> {result['balanceAfter']} (reconciler --local adjust carol 50)")
    deadline = time.monotonic() + timeout
    while True:
        _, published = stack.reconciler("balance-events", "carol")
        if any(event["detailType"] == "credits.restored" for event in published) or time.monotonic() > deadline:
            break
        time.sleep(1)
    title = "What the function published (reconciler --local balance-events carol)"
    table = Table("event", "before", "after", "threshold", "crossingId", title=title)
    for event in reversed(published):
        table.add_row(event["detailType"], str(event["balanceBefore"]), str(event["balanceAfter"]), str(event["threshold"]), event["crossingId"][:12])
    console.print(table)


def billing(detail_type: str, **detail: Any) -> dict:
    return {"Source": "credits.billing", "DetailType": detail_type, "Detail": json.dumps(detail)}


CREDITS_IN = [
    (
        "dave buys 500 credits (the payment provider's webhook)",
        billing("credits.purchased", userId="dave", credits=500, reference="pi_demo_1", amountPaid="19.99", currency="USD"),
    ),
    (
        "the same purchase delivered again",
        billing("credits.purchased", userId="dave", credits=500, reference="pi_demo_1", amountPaid="19.99", currency="USD"),
    ),
    (
        "marketing grants dave 50 promotional credits",
        billing("credits.granted", userId="dave", credits=50, reference="promo-welcome-dave", category="promotional"),
    ),
    (
        "billing refunds part of the payment: 120 credits back",
        billing(
            "credits.revoked",
            userId="dave",
            credits=120,
            reference="re_demo_1",
            category="refund",
            paymentReference="pi_demo_1",
            amountPaid="4.80",
            currency="USD",
        ),
    ),
]


def show_credits_in(stack: Stack, state: dict) -> bool:
    """Credits in as events, applied once each; True when dave's balance is 430 (the duplicate applied once)."""
    console.rule("Credits in: billing publishes credits.purchased, credits.granted, credits.revoked (source credits.billing)")
    events = aws_client(state, "events")
    event_ids = []
    for label, event in CREDITS_IN:  # one at a time: the duplicate must come after the first
        event_ids.append(events.put_events(Entries=[event])["Entries"][0]["EventId"])
        stack.delivered(event_ids[-1:])
        console.print(f"  {event['DetailType']:<18} {label}")
    delivered = stack.delivered(event_ids)
    outcomes = Table("event", "reference", "outcome", "detail", title="What the function did")
    for event_id in event_ids:
        line = delivered.get(event_id)
        outcomes.add_row(*(line.group("type", "job", "outcome", "detail") if line else ("?", "?", "not delivered", "")))
    console.print(outcomes)
    _, balance = stack.reconciler("balance", "dave")
    console.print(f"  dave: remaining {balance['remaining']} (500 once, + 50, - 120): the second delivery changed nothing")
    return balance["remaining"] == 430


def show_unexplained_write(stack: Stack, state: dict, timeout: float = 75) -> bool:
    """A direct write to dave's balance, as v1's billing did: the balance-events function flags it, the alarm fires,
    the alert names the user; the operator undoes it. True when the alarm fired."""
    console.rule("A direct write to Credits (no ledger entry): caught as unexplained")
    credits = f"Credits-{STAGE}"
    aws_client(state, "dynamodb").update_item(
        TableName=credits, Key={"userId": {"S": "dave"}}, UpdateExpression="ADD remaining :d", ExpressionAttributeValues={":d": {"N": "1000"}}
    )
    console.print("  aws dynamodb update-item --table-name Credits-dev ... ADD remaining 1000 (dave)")
    alarm, started = f"cc-reconciler-unexplained-balance-changes-{STAGE}", time.monotonic()
    cloudwatch = aws_client(state, "cloudwatch")
    while time.monotonic() - started < timeout:
        (found,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        if found["StateValue"] == "ALARM":
            break
        time.sleep(1)
    fired = found["StateValue"] == "ALARM"
    console.print(
        f"  alarm {alarm}: {found['StateValue']} after {time.monotonic() - started:.0f} s; the ops alert names dave, +1000 and the commands"
    )
    stack.reconciler("audit", "dave", "--fix", "--trust", "ledger", "--reason", "undo the direct write", "--min-age", "0", "--yes")
    _, balance = stack.reconciler("balance", "dave")
    console.print(f"  undone: reconciler --local audit dave --fix --trust ledger --> remaining {balance['remaining']}")
    return fired and balance["remaining"] == 430


def show_statement_and_liability(stack: Stack) -> None:
    month = time.strftime("%Y-%m", time.gmtime())
    console.rule(f"What finance reads: reconciler --local statement dave --month {month}; the snapshot, reconciler --local liability --check")
    _, statement = stack.reconciler("statement", "dave", "--month", month)
    table = Table("line", "category", "credits", "entries", title=f"dave, {month}: opening {statement['opening']}, closing {statement['closing']}")
    for line in statement["credits"] + statement["debits"]:
        table.add_row("credits" if line["amount"] > 0 else "debits", line["category"], f"{line['amount']:+d}", " ".join(line["ledgerIds"]))
    console.print(table)
    stack.emulator("snapshot")  # what the liability's schedule runs (hourly in prod)
    _, book = stack.reconciler("liability", "--check")
    shown = ", ".join(f"{category} {amount}" for category, amount in book["byCategory"].items())
    verdict = "agrees" if book["checked"]["agrees"] else "DISAGREES"
    console.print(
        f"  liability snapshot ({book['ageSeconds']} s old): {shown}; total {book['total']} = the sum of every balance "
        f"({book['balancesTotal']}); a scan now: {verdict}"
    )


def show_dead_letters(stack: Stack) -> int:
    console.rule("Dead-letter queue: reconciler --local dlq list")
    _, queue = stack.reconciler("dlq", "list")
    for letter in queue["messages"]:
        console.print(f"  {letter['reason']}  (event {letter['eventId']})")
    return len(queue["messages"])


def main() -> int:
    started = time.monotonic()
    console.rule("[bold]Credit reconciler: local demo")
    console.print("Starting the local stack: python -m emulator up (synthesizes the dev stage, starts moto on 127.0.0.1) ...")
    with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as state_dir:
        stack = Stack(Path(state_dir))
        try:
            state = stack.up()
            console.print(f"Endpoint {state['endpoint']}: tables, queues, topic, rule, functions and alarms from the synthesized templates")
            seed_and_hold(stack, state)
            delivered = publish_and_watch(stack, state)
            books_balance = show_books(stack)
            show_balance_events(stack)
            credits_in_once = show_credits_in(stack, state)
            caught = show_unexplained_write(stack, state)
            show_statement_and_liability(stack)
            dead_letters = show_dead_letters(stack)
        finally:
            stack.down()
    console.rule("Result")
    console.print(f"{delivered} events, {dead_letters} dead-lettered with their reason, every job settled at most once.")
    if books_balance:
        console.print(
            "[green]Every posted balance (remaining + held) equals its opening balance plus its ledger entries, "
            "and every held its open reservations.[/green]"
        )
    else:
        console.print("[red]A balance is not explained by its books (see the audit's findings above).[/red]")
    console.print(f"Done in {time.monotonic() - started:.1f} s. Your own events: python -m emulator up, then python -m emulator send events.jsonl")
    if not (credits_in_once and caught):
        console.print("[red]Credits in were not applied once each, or the direct write was not caught (see above).[/red]")
    ok = books_balance and credits_in_once and caught and dead_letters == MALFORMED and delivered == len(EVENT_STREAM)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

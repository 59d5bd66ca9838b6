"""`make demo`: the reconciler's main job, end to end, on an embedded local AWS stack.

Seeds three users, reserves credits for jobs as the video pipeline would (holds: remaining moves to held, nothing
is posted), publishes a realistic stream of events (duplicates, out-of-order, a failure, a conflict, malformed
ones) to the local EventBridge bus, lets them reach the real handler through the template's own rule, then
prints balances, ledgers and the DLQ, and audits the books as `reconciler audit` does: every posted balance
(remaining + held) equals its ledger (both tables), every held its open holds. Exits non-zero if not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.table import Table

from reconciler import bootstrap
from reconciler.config import load_config
from reconciler.domain.errors import InsufficientCredits
from reconciler.domain.ledger import adjustment_entry, balance_delta, iso_timestamp
from reconciler.local.stack import REPO_ROOT, local_stack
from reconciler.observability import logger
from reconciler.ops.audit import Auditor

console = Console(highlight=False)

OPENING_BALANCES = {"alice": 100, "bob": 50, "carol": 5}
RESERVATIONS = [("job-a1", "alice", "standard-v1", 20), ("job-b1", "bob", "hd-v1", 10), ("job-c1", "carol", "hd-v1", 40)]


def rendered(job_id: str, user_id: str, seconds, model: str) -> dict:
    return {
        "source": "video.generation",
        "detail-type": "video.rendered",
        "detail": {"jobId": job_id, "userId": user_id, "seconds": seconds, "model": model},
    }


def failed(job_id: str, user_id: str, reason: str) -> dict:
    return {"source": "video.generation", "detail-type": "video.failed", "detail": {"jobId": job_id, "userId": user_id, "reason": reason}}


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


def _moved(result: dict) -> str:
    """What a settlement did to `remaining` (a released hold included), and the balance after when it is known
    (the settlement read none unless a guard failed: the write's condition decided)."""
    after = f" -> {result['balanceAfter']}" if "balanceAfter" in result else ""
    return f"remaining {result['balanceDelta']:+d}{after}; posted {', '.join(result.get('ledgerIds') or []) or 'nothing'}"


def deliver_with_logs_to(path: Path, invoker) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as log_file, contextlib.redirect_stdout(log_file):
        handler: Any = logger.registered_handler  # Powertools' StreamHandler (typed as a plain Handler)
        previous = handler.setStream(log_file)
        try:
            return invoker.drain()
        finally:
            handler.setStream(previous)


def show_balance_events(stack, store) -> None:
    """The balance-events function on the Credits stream (docs/events.md): carol went low, exhausted and
    overdrawn above; an operator's top-up restores her. Prints what the function published."""
    import os

    from reconciler.handlers import balance_stream
    from reconciler.local.stack import templates_for
    from reconciler.local.stream_poller import StreamPoller, balance_function_environment, capture_published_events, mapping_filters, read_captured
    from reconciler.ops.adjustments import Adjuster

    console.rule("Balance events (the Credits stream -> cc-reconciler-balance-events -> EventBridge)")
    result = Adjuster(store).adjust("carol", 50, "top-up after overdraft", "demo-topup-carol", "local:demo")
    console.print(f"  top-up: carol {result.balance_before} -> {result.balance_after} (Adjuster, as `reconciler adjust` does)")
    os.environ.update(balance_function_environment(templates_for(stack.stage), stack.resources.tables))
    queue = capture_published_events(stack.client("events"), stack.client("sqs"), os.environ["BALANCE_EVENT_SOURCE"])
    stream_arn = stack.client("dynamodb").describe_table(TableName=stack.resources.tables["Credits"])["Table"]["LatestStreamArn"]
    filters = mapping_filters(templates_for(stack.stage))
    poller = StreamPoller(stack.client("dynamodbstreams"), stream_arn, balance_stream.handler, filters=filters)
    log_path = REPO_ROOT / ".local-stack" / "demo-balance-events.log"
    with log_path.open("w") as log_file, contextlib.redirect_stdout(log_file):
        handler = cast(logging.StreamHandler, logger.registered_handler)  # Powertools logs through a StreamHandler
        previous = handler.setStream(log_file)
        try:
            records = poller.drain()
        finally:
            handler.setStream(previous)
    events = read_captured(stack.client("sqs"), queue)
    table = Table(
        "user",
        "event",
        "before",
        "after",
        "threshold",
        "ledger entries",
        "crossingId",
        title=f"What the function published ({records} stream records delivered, {poller.filtered} kept out by the mapping's filters; "
        f"logs: {log_path.relative_to(REPO_ROOT)})",
    )
    for event in events:
        d = event["detail"]
        table.add_row(
            d["userId"],
            event["detail-type"],
            str(d["balanceBefore"]),
            str(d["balanceAfter"]),
            str(d["threshold"]),
            ", ".join(e["ledgerId"] for e in d["ledgerEntries"]),
            d["crossingId"][:12],
        )
    console.print(table)
    console.print("  the same, from the history table: reconciler --local balance-events carol")


def main() -> int:
    started = time.monotonic()
    console.rule("[bold]Credit reconciler: local demo")
    console.print("Synthesizing the dev stage and starting an embedded AWS endpoint (moto server on 127.0.0.1) ...")
    with local_stack("dev") as stack:
        resources = stack.resources
        console.print(f"Endpoint {stack.endpoint}; created from the synthesized templates:")
        console.print(
            f"  tables {', '.join(resources.tables.values())}; queue {resources.dlq_url.rsplit('/', 1)[-1]}; topic "
            f"{resources.ops_topic_arn.rsplit(':', 1)[-1]}"
        )
        for name, pattern in resources.rules.items():
            console.print(f"  rule {name} with pattern {json.dumps(pattern, sort_keys=True)}")
        config = load_config()
        store = bootstrap.operations_store(config, stack.client("dynamodb"))

        console.rule("Seeding users (opening balances are ledger entries too)")
        for user, credits in OPENING_BALANCES.items():
            entry = adjustment_entry(user, credits, "opening balance", f"demo-opening-{user}", "local:demo", iso_timestamp())
            store.commit_adjustment(entry)
            console.print(f"  {user}: {credits} credits")

        console.rule("Submitting jobs with reservations (the pipeline's library call: holds, nothing posted)")
        reservations = bootstrap.build_reservations(store, config)
        for job_id, user, model, credits in RESERVATIONS:
            try:
                reservations.reserve(job_id, user, model, credits)
                balance = store.get_balance(user) or {}
                console.print(
                    f"  {job_id}: held {credits} credits of {user} on {model}: remaining {balance.get('remaining')}, "
                    f"held {balance.get('held')}, posted {(balance.get('remaining') or 0) + (balance.get('held') or 0)}"
                )
            except InsufficientCredits as refusal:
                console.print(f"  {job_id}: refused, nothing moved ({refusal})")

        console.rule("Publishing events to the local EventBridge bus")
        for label, event in EVENT_STREAM:
            console.print(f"  {event['detail-type']:<15} {event['detail']['jobId']:<7} {label}")
        stack.publish([event for _, event in EVENT_STREAM])
        invoker = stack.invoker()
        # The handler's JSON logs and EMF metrics are for CloudWatch; locally they go to a file.
        log_path = REPO_ROOT / ".local-stack" / "demo-handler.log"
        delivered = deliver_with_logs_to(log_path, invoker)
        console.print(f"  the rule delivered {delivered} events to the handler (its logs and metrics: {log_path.relative_to(REPO_ROOT)})")

        outcomes = Table("event", "job", "outcome", "detail", title="What the handler did")
        for record in invoker.results:
            event, result = record["event"], record.get("result") or {}
            detail = result.get("reason") or (_moved(result) if "balanceDelta" in result else result.get("settledAs", ""))
            if result.get("overdraft"):
                detail += " (overdraft)"
            outcomes.add_row(event["detail-type"], str(event["detail"].get("jobId")), result.get("outcome", "error"), str(detail))
        console.print(outcomes)

        console.rule("Balances and ledgers (UserLedger's job postings and Ledger's operator entries, merged)")
        for user in OPENING_BALANCES:
            balance = store.get_balance(user) or {}
            remaining, held = balance.get("remaining") or 0, balance.get("held") or 0
            entries = list(store.ledger_for_user(user))
            title = f"{user}: remaining {remaining}, held {held}, posted {remaining + held} (ledger sum {balance_delta(entries)})"
            ledger = Table("time (UTC)", "type", "amount", "reference", "description", title=title)
            for entry in entries:
                ledger.add_row(entry.timestamp[11:23], entry.type, str(entry.amount), entry.reference, entry.description)
            console.print(ledger)
        # The audit `reconciler audit` runs: posted = ledger sum (both tables), held = open hold reservations.
        discrepancies = Auditor(store, legacy_before=store.legacy_reservations_before).audit_all()
        for discrepancy in discrepancies:
            console.print(f"  [red]{discrepancy.user_id}: {discrepancy.summary()}[/red]")
        books_balance = not discrepancies

        show_balance_events(stack, store)

        console.rule("Dead-letter queue")
        sqs = stack.client("sqs")
        messages = sqs.receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0).get(
            "Messages", []
        )
        for message in messages:
            attributes = {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}
            console.print(f"  {attributes.get('field')}: {attributes.get('reason')}  (event {attributes.get('eventId')})")

        console.rule("Result")
        console.print(f"{delivered} events, {len(messages)} dead-lettered with their reason, every job settled at most once.")
        if books_balance:
            console.print(
                "[green]Every posted balance (remaining + held) equals its opening balance plus its ledger entries, "
                "and every held its open reservations.[/green]"
            )
        else:
            console.print("[red]A balance is not explained by its books (see the audit's findings above).[/red]")
        console.print(
            f"Done in {time.monotonic() - started:.1f} s. Run your own events: reconciler local up, then reconciler local send events.jsonl"
        )
        return 0 if books_balance and len(messages) == 3 else 1


if __name__ == "__main__":
    sys.exit(main())

"""The seeded world, written into the tables before the concurrent part of a run: opening balances, threshold
overrides, damaged jobs, finished jobs whose events were lost (for the timer scan), and the data the v2 code
wrote (reservations posted to the Ledger, settled jobs), as that code wrote it. Each write is applied to the
oracle's books too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from simulator.harness import Harness
from simulator.oracle import CUT_OFF, LEGACY_HOLD, Books, OracleJob, job_ledger_id, render_cost
from simulator.scenario import Task


def hours_ago(hours: float) -> str:
    """The runtime's timestamp format, for a time `hours` before the simulated now (simulator.clock)."""
    from datetime import timedelta

    from reconciler.domain.ledger import iso_timestamp
    from simulator import clock

    return iso_timestamp(clock.now() - timedelta(hours=hours))


def before_the_cut_off(hours: float) -> str:
    """A moment `hours` before the cut-off (oracle.CUT_OFF): when the code before settlement records wrote its data."""
    from datetime import datetime, timedelta

    from reconciler.domain.ledger import iso_timestamp

    return iso_timestamp(datetime.fromisoformat(CUT_OFF.replace("Z", "+00:00")) - timedelta(hours=hours))


class World:
    def __init__(self, harness: Harness, books: Books, covered: Counter) -> None:
        self.h, self.books, self.covered = harness, books, covered
        self.jobs = harness.resources.tables["Jobs"]

    def arrange(self, task: Task) -> None:
        arrange: dict[str, Callable[..., None]] = {
            "adjust": self._opening_balance,
            "override": self._override,
            "damage": self._damaged_job,
            "seed-job": self._lost_job,
            "legacy-reserve": self._legacy_reservation,
            "legacy-settled": self._legacy_settled_job,
            "legacy-hold": self._v3_hold,
            "unfunded-hold": self._unfunded_hold,
        }
        arrange[task.kind](*task.args)

    def _opening_balance(self, user: str, amount: int, reference: str) -> None:
        """Written as an adjustment is (balance and ledger in one transaction); the CLI's Adjuster itself runs in
        the concurrent part of the run. An opening of 0 writes nothing."""
        from reconciler.domain.ledger import adjustment_entry

        if amount:
            self.h.store.commit_adjustment(adjustment_entry(user, amount, "opening balance", reference, "sim", hours_ago(4)))
            self.books.adjust(user, amount)

    def _override(self, user: str, attribute: str, value: str) -> None:
        """A per-user threshold override on an existing Credits item."""
        self.h.dynamodb.update_item(
            TableName=self.h.resources.tables["Credits"],
            Key={"userId": {"S": user}},
            UpdateExpression="SET #a = :v",
            ConditionExpression="attribute_exists(userId)",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": json.loads(value)},
        )

    def _damaged_job(self, job_id: str, user: str, damage: str, before_cut_off: bool = False) -> None:
        """A Jobs item settlement cannot read. A first attempt does not read it (its write's condition does): it is
        refused always where that condition fails on the damage (an owner that is not the user's, a reservation on
        an item from before the cut-off), else only when a retry reads the item."""
        damaged = json.loads(damage)
        always = "userId" in damaged or ("reservedCredits" in damaged and before_cut_off)
        item = {
            "jobId": {"S": job_id},
            "userId": {"S": user},
            "status": {"S": "failed"},
            "createdAt": {"S": before_the_cut_off(3) if before_cut_off else hours_ago(3)},
            "updatedAt": {"S": hours_ago(3)},
            "unsettled": {"S": "PENDING"},
            **damaged,
        }
        self.h.dynamodb.put_item(TableName=self.jobs, Item=item)
        self.books.jobs[job_id] = OracleJob(user, damaged="always" if always else "maybe")

    def _lost_job(self, job_id: str, user: str, status: str, reserved: int, seconds: int | str) -> None:
        """A job the pipeline finished whose event was lost: the timer scan's, with a v2 reservation or none."""
        item = {
            "jobId": {"S": job_id},
            "userId": {"S": user},
            "status": {"S": status},
            "model": {"S": "test"},
            # One with a reservation was made by v2, before the cut-off.
            "createdAt": {"S": before_the_cut_off(3) if reserved else hours_ago(3)},
            "updatedAt": {"S": hours_ago(2)},
            "unsettled": {"S": "PENDING"},
            "seconds": {"N": str(seconds)} if isinstance(seconds, int) else {"S": seconds},
        }
        self.h.dynamodb.put_item(TableName=self.jobs, Item=item)
        self.books.jobs[job_id] = OracleJob(user)
        if not reserved:
            return
        self.books.v2_reservation(job_id, user, reserved)
        self.h.dynamodb.update_item(
            TableName=self.h.resources.tables["Credits"],
            Key={"userId": {"S": user}},
            UpdateExpression="ADD remaining :d",
            ExpressionAttributeValues={":d": {"N": str(-reserved)}},
        )
        self.h.dynamodb.put_item(
            TableName=self.h.resources.tables["Ledger"],
            Item={
                "ledgerId": {"S": job_ledger_id(job_id, "reserve")},
                "userId": {"S": user},
                "timestamp": {"S": before_the_cut_off(3)},
                "type": {"S": "debit"},
                "amount": {"N": str(reserved)},
                "description": {"S": "reserve"},
                "reference": {"S": job_id},
            },
        )
        self.h.dynamodb.update_item(
            TableName=self.jobs,
            Key={"jobId": {"S": job_id}},
            UpdateExpression="SET reservedCredits = :r",
            ExpressionAttributeValues={":r": {"N": str(reserved)}},
        )

    def _legacy_reservation(self, job_id: str, user: str, model: str, credits: int, status: str, seconds: float) -> None:
        if self._v2_reservation(job_id, user, model, credits, before_the_cut_off(3.5)) and status != "submitted":
            # The pipeline's progress (its own write, as before the redesign): status, and the render's length.
            values = {":s": {"S": status}, ":now": {"S": hours_ago(3)}, ":sec": {"N": str(seconds)}}
            self.h.dynamodb.update_item(
                TableName=self.jobs,
                Key={"jobId": {"S": job_id}},
                UpdateExpression="SET #s = :s, updatedAt = :now" + (", seconds = :sec" if status == "rendered" else ""),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values if status == "rendered" else {k: v for k, v in values.items() if k != ":sec"},
            )

    def _legacy_settled_job(self, job_id: str, user: str, model: str, credits: int, outcome: str, seconds: int, event_id: str) -> None:
        if not credits:  # settled with no reservation: its item holds no reservedCredits
            self._unreserved_job_before_the_cut_off(job_id, user, model)
            self._v2_settlement(job_id, user, model, credits, outcome, seconds, event_id, before_the_cut_off(3.8))
        elif self._v2_reservation(job_id, user, model, credits, before_the_cut_off(3.9)):
            self._v2_settlement(job_id, user, model, credits, outcome, seconds, event_id, before_the_cut_off(3.8))

    def _unreserved_job_before_the_cut_off(self, job_id: str, user: str, model: str) -> None:
        from reconciler.repository.dynamodb import to_item

        at = before_the_cut_off(3.9)
        job = {"jobId": job_id, "userId": user, "model": model, "status": "submitted", "createdAt": at, "updatedAt": at, "unsettled": "PENDING"}
        self.h.dynamodb.put_item(TableName=self.jobs, Item=to_item(job), ConditionExpression="attribute_not_exists(jobId)")
        self.books.jobs[job_id] = OracleJob(user)
        self.covered["legacy:unreserved-jobs-settled-before-records"] += 1

    def _v2_reservation(self, job_id: str, user: str, model: str, credits: int, at: str) -> bool:
        """A reservation as the v2 code wrote it (git show 66bde68:runtime/reconciler/repository/dynamodb.py,
        commit_reservation): remaining debited under `remaining >= credits`, a `reserve` debit in Ledger, the job
        with reservedCredits and no reservedAs, in one transaction. False when v2 would have refused it."""
        from reconciler.repository.dynamodb import to_item

        tables = self.h.resources.tables
        entry = {
            "ledgerId": job_ledger_id(job_id, "reserve"),
            "userId": user,
            "timestamp": at,
            "type": "debit",
            "amount": credits,
            "description": f"Reservation for job {job_id} on {model}",
            "reference": job_id,
        }
        job = {
            "jobId": job_id,
            "userId": user,
            "model": model,
            "status": "submitted",
            "createdAt": at,
            "reservedCredits": credits,
            "unsettled": "PENDING",
        }
        try:
            self.h.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": tables["Credits"],
                            "Key": to_item({"userId": user}),
                            "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) + :delta, updatedAt = :now",
                            "ConditionExpression": "remaining >= :amount",
                            "ExpressionAttributeValues": to_item({":delta": -credits, ":now": at, ":zero": 0, ":amount": credits}),
                        }
                    },
                    {"Put": {"TableName": tables["Ledger"], "Item": to_item(entry), "ConditionExpression": "attribute_not_exists(ledgerId)"}},
                    {"Put": {"TableName": tables["Jobs"], "Item": to_item(job), "ConditionExpression": "attribute_not_exists(jobId)"}},
                ]
            )
        except self.h.dynamodb.exceptions.TransactionCanceledException:
            return False
        self.books.v2_reservation(job_id, user, credits)
        self.covered["legacy:open-reservations-seeded"] += 1
        return True

    def _v3_hold(self, job_id: str, user: str, model: str, credits: int, status: str) -> None:
        """A hold as the code before settlement records wrote it, on a job created before the cut-off: remaining ->
        held under `remaining >= credits`, and the Jobs item with reservedCredits, reservedAs "hold" and its unsettled
        marker, in one transaction."""
        from reconciler.repository.dynamodb import to_item

        at = before_the_cut_off(2.5)
        job: dict[str, Any] = {"jobId": job_id, "userId": user, "model": model, "status": status, "createdAt": at, "updatedAt": hours_ago(2)}
        job.update(reservedCredits=credits, reservedAs="hold", unsettled="PENDING")
        hold: dict[str, Any] = {
            "TableName": self.h.resources.tables["Credits"],
            "Key": to_item({"userId": user}),
            "UpdateExpression": "SET remaining = remaining - :c, held = if_not_exists(held, :zero) + :c, updatedAt = :now",
            "ConditionExpression": "remaining >= :c",
            "ExpressionAttributeValues": to_item({":c": credits, ":zero": 0, ":now": at}),
        }
        put: dict[str, Any] = {"TableName": self.jobs, "Item": to_item(job), "ConditionExpression": "attribute_not_exists(jobId)"}
        try:
            items: list[Any] = [{"Update": hold}, {"Put": put}]
            self.h.dynamodb.transact_write_items(TransactItems=items)
        except self.h.dynamodb.exceptions.TransactionCanceledException:
            return
        self.books.v2_reservation(job_id, user, credits, LEGACY_HOLD)
        self.covered["legacy:holds-on-jobs-items-seeded"] += 1

    def _unfunded_hold(self, job_id: str, user: str, model: str, credits: int, status: str) -> None:
        """A Jobs item from before the cut-off that claims a hold its balance never had (a restored backup, a hold
        written by hand): settlement must refuse to release what nobody paid (a DamagedJob in the DLQ)."""
        from reconciler.repository.dynamodb import to_item

        job: dict[str, Any] = {"jobId": job_id, "userId": user, "model": model, "status": status, "createdAt": before_the_cut_off(2)}
        job.update(updatedAt=hours_ago(2), reservedCredits=credits, reservedAs="hold", unsettled="PENDING", seconds=3)
        self.h.dynamodb.put_item(TableName=self.jobs, Item=to_item(job))
        self.books.jobs[job_id] = OracleJob(user, damaged="always")
        self.books.claimed[user] += credits
        self.covered["pipeline:unfunded-holds-before-the-cut-off"] += 1

    def _v2_settlement(self, job_id: str, user: str, model: str, credits: int, outcome: str, seconds: int, event_id: str, at: str) -> None:
        """The v2 code's settlement of such a job (release + charge, or a refund, all in Ledger), as it wrote it."""
        from reconciler.repository.dynamodb import to_item

        tables = self.h.resources.tables
        cost = render_cost(model, Fraction(seconds)) if outcome == "rendered" else 0
        postings = (
            [("release", "credit", credits, f"Release of {credits} reserved credits"), ("charge", "debit", cost, f"Render of {seconds}s on {model}")]
            if outcome == "rendered"
            else [("refund", "credit", credits, "Refund of failed render")]
        )
        change = credits - cost
        self.books.jobs[job_id].before_the_run = True
        _, overdraft = self.books.settle(job_id, user, outcome, cost, (event_id, "req-v2"), table="Ledger")
        settled = {
            ":settledAs": outcome,
            ":settledAt": at,
            ":settledByEvent": event_id,
            ":chargedCredits": cost,
            ":releasedCredits": credits if outcome == "rendered" else 0,
            ":refundedCredits": credits if outcome == "failed" else 0,
            ":settledIntoOverdraft": overdraft,
            ":settledByRequest": "req-v2",
        }
        items: list[Any] = [
            {
                "Update": {
                    "TableName": tables["Credits"],
                    "Key": to_item({"userId": user}),
                    "UpdateExpression": "SET remaining = if_not_exists(remaining, :zero) + :delta, updatedAt = :now",
                    "ExpressionAttributeValues": to_item({":delta": change, ":now": at, ":zero": 0}),
                }
            },
            {
                "Update": {
                    "TableName": tables["Jobs"],
                    "Key": to_item({"jobId": job_id}),
                    "UpdateExpression": "SET "
                    + ", ".join(f"{name[1:]} = {name}" for name in settled)
                    + ", #status = :settledAs"
                    + (", seconds = :seconds" if outcome == "rendered" else "")
                    + " REMOVE #u",
                    "ExpressionAttributeNames": {"#status": "status", "#u": "unsettled"},
                    "ExpressionAttributeValues": to_item({**settled, **({":seconds": seconds} if outcome == "rendered" else {})}),
                }
            },
        ]
        for posting, kind, amount, description in postings:
            if not amount:  # nothing was reserved: nothing to release or refund
                continue
            entry = {
                "ledgerId": job_ledger_id(job_id, posting),
                "userId": user,
                "timestamp": at,
                "type": kind,
                "amount": amount,
                "description": description,
                "reference": job_id,
                "eventId": event_id,
            }
            items.append({"Put": {"TableName": tables["Ledger"], "Item": to_item(entry), "ConditionExpression": "attribute_not_exists(ledgerId)"}})
        self.h.dynamodb.transact_write_items(TransactItems=items)
        self.covered["legacy:settled-jobs-seeded"] += 1

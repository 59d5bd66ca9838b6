"""Every `reconciler` CLI command an alert may suggest: the ONE place that knows the CLI's syntax.

Templates only build argument lists; nothing here runs a command. Values that come from events (user
ids, job ids, reasons) are shell-quoted, so a suggestion can be pasted into a shell as it is.
tests/integration/notify/test_notify_commands.py parses every template against the real typer app.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

PROGRAM = "reconciler"


@dataclass(frozen=True)
class Command:
    """One suggested command: what it is for and its argument vector (without the program name)."""

    purpose: str
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join([PROGRAM, *(shlex.quote(arg) for arg in self.argv)])

    def as_dict(self) -> dict[str, str]:
        return {"purpose": self.purpose, "command": self.text}


def _base(stage: str) -> list[str]:
    return ["--stage", stage]


def balance(stage: str, user_id: str) -> Command:
    return Command(f"show the balance of {user_id}", (*_base(stage), "balance", user_id))


def ledger(stage: str, user_id: str, since: str | None = None, until: str | None = None) -> Command:
    argv = [*_base(stage), "ledger", user_id]
    if since:
        argv += ["--since", since]
    if until:
        argv += ["--until", until]
    return Command(f"show the ledger of {user_id}", tuple(argv))


def adjust(stage: str, user_id: str, amount: int, reason: str, reference: str) -> Command:
    # "--" ends options: a negative AMOUNT (a debit) must not be read as an option.
    return Command(
        f"ONLY IF the investigation confirms it: move {amount:+d} credits for {user_id}",
        (*_base(stage), "adjust", "--reason", reason, "--reference", reference, "--", user_id, str(amount)),
    )


def dlq_list(stage: str) -> Command:
    return Command("list the dead-letter queue", (*_base(stage), "dlq", "list"))


def dlq_show(stage: str, message_id: str) -> Command:
    return Command("show the dead-lettered event and why it was refused", (*_base(stage), "dlq", "show", message_id))


def dlq_replay(stage: str, max_messages: int | None = None, dry_run: bool = True) -> Command:
    argv = [*_base(stage), "dlq", "replay"]
    if max_messages is not None:
        argv += ["--max", str(max_messages)]
    if dry_run:
        argv.append("--dry-run")
    purpose = "preview a replay of the dead-letter queue" if dry_run else "replay the dead-letter queue once fixed upstream"
    return Command(purpose, tuple(argv))


def scan(stage: str) -> Command:
    return Command("run the timer scan now", (*_base(stage), "scan"))


def audit(stage: str, user_id: str | None = None) -> Command:
    argv = [*_base(stage), "audit"] + ([user_id] if user_id else [])
    return Command(f"compare balance and ledger{' of ' + user_id if user_id else ''}", tuple(argv))


def audit_fix(stage: str, user_id: str, reason: str) -> Command:
    return Command(
        f"ONLY IF the ledger is right: correct the balance of {user_id} to match it",
        (*_base(stage), "audit", user_id, "--fix", "--reason", reason),
    )


def audit_fix_trusting(stage: str, user_id: str, trust: str, reason: str) -> Command:
    """`audit USER --fix --trust ledger|balance`: undo a balance change (back to the books) or book it (an entry)."""
    purpose = (
        f"UNDO it: set the balance of {user_id} back to its ledger"
        if trust == "ledger"
        else f"BOOK it: an entry that explains the balance of {user_id}"
    )
    return Command(purpose, (*_base(stage), "audit", user_id, "--fix", "--trust", trust, "--reason", reason))


def alarms_status(stage: str) -> Command:
    return Command("show the reconciler alarms", (*_base(stage), "alarms", "status"))


def pause(stage: str) -> Command:
    # At reserved concurrency 0 Lambda does not retry: each event goes to the DLQ unrun, for `dlq replay` after resume.
    return Command("stop processing events (they go to the DLQ unrun: replay them after resume)", (*_base(stage), "pause"))


def resume(stage: str) -> Command:
    return Command("resume processing events", (*_base(stage), "resume"))


def events_replay(stage: str, start: str, end: str) -> Command:
    return Command("replay archived render events of a time range", (*_base(stage), "events", "replay", "--from", start, "--to", end))


def backup(stage: str) -> Command:
    return Command("take on-demand backups of the tables", (*_base(stage), "backup"))


def every_template(stage: str = "prod") -> list[Command]:
    """One instance of every template, with awkward values: the CLI contract test parses each."""
    user, job = "user 123's", "job-42"
    return [
        balance(stage, user),
        ledger(stage, user),
        ledger(stage, user, since="2026-01-01T00:00:00Z", until="2026-01-02T00:00:00Z"),
        adjust(stage, user, -25, "conflict on job-42: rendered after settled failed", f"conflict-{job}"),
        adjust(stage, user, 25, "refund", f"conflict-{job}"),
        dlq_list(stage),
        dlq_show(stage, "3f1c2a9e-0000-4000-8000-000000000000"),
        dlq_replay(stage),
        dlq_replay(stage, max_messages=10),
        dlq_replay(stage, max_messages=10, dry_run=False),
        scan(stage),
        audit(stage),
        audit(stage, user),
        audit_fix(stage, user, "audit discrepancy confirmed"),
        alarms_status(stage),
        pause(stage),
        resume(stage),
        events_replay(stage, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"),
        backup(stage),
    ]

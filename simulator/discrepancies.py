"""The audit judged by what it finds: after a run's other invariants (the books then clean), some runs damage the
books behind the product's back (a direct write to a balance, a ledger entry deleted or added, a wrong `held`),
as a stray put-item, a restored backup or a broken pipeline would; the operator's audit, built as the CLI builds
it, must then report exactly the users damaged, each with the right kind and difference, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run


@dataclass(frozen=True)
class Injected:
    """What a damage does to the audit's two figures of a user: the posted balance less the ledger's sum, and
    held less the open holds."""

    user: str
    what: str
    ledger: int = 0
    held: int = 0


def inject(run: Run, task: Task, before_the_run: bool = False) -> Injected:
    """Writes the damage straight into the tables (no transaction, no product code). Before the run (operators fix it
    during the run) an added entry has an id of its own, and a deleted entry is an operator's, not a job's posting."""
    kind, user, amount = task.args
    dynamodb, tables = run.h.dynamodb, run.h.resources.tables
    key = {"userId": {"S": user}}
    if kind == "balance":
        dynamodb.update_item(TableName=tables["Credits"], Key=key, UpdateExpression="ADD remaining :d", ExpressionAttributeValues=_n(d=amount))
        return Injected(user, f"remaining moved by {amount}", ledger=amount)
    if kind == "held":  # posted balance unchanged: only held is wrong
        values = _n(h=amount, r=-amount)
        dynamodb.update_item(TableName=tables["Credits"], Key=key, UpdateExpression="ADD held :h, remaining :r", ExpressionAttributeValues=values)
        return Injected(user, f"{amount} moved from remaining to held", held=amount)
    if kind == "extra-entry":
        entry = {
            "ledgerId": {"S": f"sim-extra{'-before' if before_the_run else ''}:{user}"},
            "userId": {"S": user},
            "timestamp": {"S": "2026-01-01T00:00:00.000Z"},
            "type": {"S": "credit" if amount > 0 else "debit"},
            "amount": {"N": str(abs(amount))},
            "description": {"S": "a stray entry"},
            "reference": {"S": "sim"},
        }
        dynamodb.put_item(TableName=tables["Ledger"], Item=entry)
        return Injected(user, f"an entry of {amount:+d} added to Ledger", ledger=-amount)
    return _delete_an_entry(run, user, amount, before_the_run)


def _delete_an_entry(run: Run, user: str, where: float, only_operators_entries: bool) -> Injected:
    from reconciler.repository.dynamodb import from_item

    tables = run.h.resources.tables
    entries = [(name, item) for name in ("Ledger", "UserLedger") for item in run.h.dynamodb.scan(TableName=tables[name])["Items"]]
    mine = sorted(((name, item) for name, item in entries if item["userId"]["S"] == user), key=lambda pair: (pair[0], pair[1]["ledgerId"]["S"]))
    mine = [(name, item) for name, item in mine if not (only_operators_entries and item["ledgerId"]["S"].startswith("job:"))]
    table, item = mine[min(int(where * len(mine)), len(mine) - 1)]
    key = {name: item[name] for name in run.h.key_names[tables[table]]}
    run.h.dynamodb.delete_item(TableName=tables[table], Key=key)
    entry = from_item(item)
    signed = int(entry["amount"]) * (1 if entry["type"] == "credit" else -1)
    return Injected(user, f"entry {entry['ledgerId']} ({signed:+d}) deleted from {table}", ledger=signed)


def _n(**values: int) -> dict:
    return {f":{name}": {"N": str(value)} for name, value in values.items()}


def the_audit_reports_exactly_the_injected_discrepancies(run: Run, injected: list[Injected]) -> Iterator[str]:
    """the operator's audit (all users; and one damaged user's own) reports exactly the users whose books the run damaged, each
    with the kind (ledger, holds) and the difference the damage implies, and nothing else"""
    from simulator.tables import expected_kinds, operators_auditor

    auditor = operators_auditor(run)
    # What the world wrote by hand before (damage no fix repaired, held with no hold behind it, holds claimed with no
    # balance behind them) is found too; users whose balance the world stored damaged are not audited.
    off = run.books.off_the_books()
    expected = {user: Injected(user, f"off by {ledger}, {held} before", ledger, held) for user, (ledger, held) in off.items()}
    for hit in injected:
        before = expected.get(hit.user, Injected(hit.user, ""))
        expected[hit.user] = Injected(hit.user, f"{before.what}; {hit.what}".strip("; "), before.ledger + hit.ledger, before.held + hit.held)
    expected = {user: both for user, both in expected.items() if both.ledger or both.held}
    found = {discrepancy.user_id: discrepancy for discrepancy in auditor.audit_all() if discrepancy.user_id not in run.books.damaged_balances}
    for user in sorted(set(expected) | set(found)):
        damage, discrepancy = expected.get(user), found.get(user)
        if discrepancy is None:
            yield f"the audit does not report {user!r}, whose books the run damaged: {damage.what if damage else ''}"
            continue
        report = (discrepancy.difference, discrepancy.held_difference, tuple(discrepancy.kinds))
        if damage is None:
            if report[2] and report == (0, 0, expected_kinds(run, 0, 0, discrepancy)):
                continue  # whole books; it names the world's hand-written holds as ignored, as it must
            yield f"the audit reports {user!r}, whose books are whole: {discrepancy.as_dict()}"
            continue
        kinds = expected_kinds(run, damage.ledger, damage.held, discrepancy)
        if report != (damage.ledger, damage.held, kinds):
            yield f"the audit reports {user!r} as {discrepancy.as_dict()}; the damage ({damage.what}) implies {damage.ledger}, {damage.held}, {kinds}"
    if expected:
        user = sorted(expected)[0]
        own = auditor.audit_user(user)
        if own is None or (own.difference, own.held_difference) != (expected[user].ledger, expected[user].held):
            yield f"the audit of {user!r} alone reports {own.as_dict() if own else 'nothing'}; the damage ({expected[user].what}) says otherwise"
    run.result.covered["audit:discrepancies-injected"] += len(injected)


def damage_and_audit(run: Run) -> None:
    """The last step of a run: the damages of its scenario, then the audit judged by them."""
    injected = [inject(run, task) for task in run.s.discrepancies]
    for kind in (task.args[0] for task in run.s.discrepancies):
        run.result.covered[f"audit:injected-{kind}"] += 1
    run.result.failures.extend(the_audit_reports_exactly_the_injected_discrepancies(run, injected))

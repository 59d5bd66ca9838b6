"""balance-events: a user's recent balance events (credits.low, .exhausted, .overdrawn, .restored), as published.

Reads `BalanceEvents-{stage}` (the balance-events function's published markers, one Query, newest first); see
docs/events.md. Works against a deployed stage (the operator policies allow the Query) and the local stack.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from reconciler.cli.app import UserId, app, state_of


@app.command("balance-events")
def balance_events(
    ctx: typer.Context,
    user: UserId,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 20,
) -> None:
    """A user's most recent balance events, newest first (what the balance-events function published)."""
    state = state_of(ctx)
    items = state.target.balance_events().recent(user, limit)
    rows = [
        {
            "detailType": item.get("detailType"),
            "crossingId": item.get("crossingId"),
            "balanceBefore": _number(item.get("balanceBefore")),
            "balanceAfter": _number(item.get("balanceAfter")),
            "threshold": _number(item.get("threshold")),
            "changedAt": item.get("changedAt"),
            "publishedAt": item.get("publishedAt"),
            "eventId": item.get("eventId"),
            "detail": json.loads(item["detail"]) if isinstance(item.get("detail"), str) else None,
        }
        for item in items
    ]
    state.out.data(rows)
    state.out.table(
        f"Balance events of {user} ({state.stage})",
        ["changed", "event", "before", "after", "threshold", "crossingId"],
        [[r["changedAt"], r["detailType"], r["balanceBefore"], r["balanceAfter"], r["threshold"], r["crossingId"]] for r in rows],
    )
    state.out.line(f"{len(rows)} balance events" + ("" if rows else f" for {user}"))


def _number(value):
    return None if value is None else int(value)

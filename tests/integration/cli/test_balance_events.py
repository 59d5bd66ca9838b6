"""balance-events USER: a user's recent balance events from BalanceEvents-{stage}, newest first."""

from __future__ import annotations

import json


def test_balance_events_lists_a_users_recent_events_newest_first(env, cli):
    # Given two published balance events of u1 (markers as the balance-events function writes them) and one of u2
    for key, detail_type, before, after in (
        ("00000000000000000000000000000000000101#credits.low", "credits.low", 12, 4),
        ("00000000000000000000000000000000000102#credits.restored", "credits.restored", 4, 40),
    ):
        env.put(
            "BalanceEvents-dev",
            {
                "userId": "u1",
                "eventKey": key,
                "crossingId": f"id-{detail_type}",
                "detailType": detail_type,
                "balanceBefore": before,
                "balanceAfter": after,
                "threshold": 10,
                "changedAt": "2026-11-29T10:00:00.000Z",
                "publishedAt": "2026-11-29T10:00:01.000Z",
                "eventId": "e",
                "detail": json.dumps({"userId": "u1"}),
            },
        )
    env.put("BalanceEvents-dev", {"userId": "u2", "eventKey": "00000000000000000000000000000000000103#credits.low", "detailType": "credits.low"})
    # When an operator lists u1's events, at most 1
    run = cli("--json", "balance-events", "u1", "--limit", "1")
    # Then the newest one only, with its before/after
    assert run.exit_code == 0, run.stderr
    (event,) = run.json()
    assert (event["detailType"], event["balanceBefore"], event["balanceAfter"]) == ("credits.restored", 4, 40)
    assert event["detail"] == {"userId": "u1"}
    assert cli("--json", "balance-events", "u1").json()[1]["detailType"] == "credits.low"
    assert cli("--json", "balance-events", "nobody").json() == []

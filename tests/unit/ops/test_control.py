import re
from datetime import UTC, datetime

from reconciler.ops.control import backup_name, describe_hold, replay_name


def test_backup_and_replay_names_are_valid_and_sortable():
    moment = datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC)
    assert backup_name("Credits-prod", moment) == "Credits-prod-20261128T101500Z"
    assert re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", backup_name("Ledger-staging", moment))
    assert len(replay_name("staging", moment)) <= 64


def test_the_hold_is_said_in_hours():
    assert describe_hold(21600) == "events are held for up to 6 hours, then go to the DLQ"
    assert describe_hold(5400) == "events are held for up to 90 minutes, then go to the DLQ"

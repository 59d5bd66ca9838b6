import re
from datetime import UTC, datetime

from reconciler.domain.events import skips_refused
from reconciler.ops.control import backup_name, describe_pause, replay_name


def test_backup_and_replay_names_are_valid_and_sortable():
    moment = datetime(2026, 11, 28, 10, 15, 0, tzinfo=UTC)
    assert backup_name("Credits-prod", moment) == "Credits-prod-20261128T101500Z"
    assert re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", backup_name("Ledger-staging", moment))
    assert len(replay_name("staging", moment)) <= 64
    # The longest: a replay that dead-letters what it refuses, which the function knows by its name's end
    dead_lettering = replay_name("staging", moment, dead_letter_refused=True)
    assert len(dead_lettering) <= 64 and re.fullmatch(r"[.\-_A-Za-z0-9]+", dead_lettering)
    assert not skips_refused(dead_lettering) and skips_refused(replay_name("staging", moment)) and not skips_refused(None)


def test_a_pause_says_its_events_go_to_the_dlq_for_replay():
    # At reserved concurrency 0 Lambda neither queues nor retries: the events are in the DLQ, and the way back is replay
    said = describe_pause("reconciler --stage prod --local dlq replay")
    assert "go to the DLQ at once, unrun" in said and "`reconciler --stage prod --local dlq replay`" in said and "held" not in said

"""The DynamoDB store against moto, in-process and over real HTTP (moto server on 127.0.0.1)."""

from decimal import Decimal

import pytest

from reconciler.domain.errors import LedgerEntryTaken
from reconciler.domain.events import VideoRendered
from reconciler.domain.ledger import adjustment_entry
from reconciler.domain.pricing import PriceBook
from reconciler.domain.settlement import UNREAD, Known, decide
from reconciler.service.ports import BalanceChanged, StaleState

NOW = "2026-11-28T12:00:00.000Z"


@pytest.fixture(params=["in-process", pytest.param("server", marks=pytest.mark.server)])
def stage(request):
    return request.getfixturevalue("aws" if request.param == "in-process" else "aws_server")


def recorded(stage):
    """A client of the stage whose requests (operation and parameters) are recorded (emulator/fidelity.py reads
    a table's keys from in-process moto itself, so every request recorded is the code's)."""
    calls = []

    def record(params, model, **_):
        calls.append((model.name, params))

    client = stage.client("dynamodb")
    client.meta.events.register("provide-client-params.dynamodb", record)
    return client, calls


def test_load_job_is_one_strongly_consistent_get_of_the_job_and_reads_no_balance(stage):
    stage.seed_balance("u", 12)
    stage.put_job(jobId="j", userId="u", status="rendering", reservedCredits=4, createdAt=NOW)
    client, calls = recorded(stage)
    job = stage.store(client).load_job("j")
    assert (job.job_id, job.reserved_credits) == ("j", 4)
    ((operation, params),) = calls
    assert (operation, params["TableName"], params["ConsistentRead"]) == ("GetItem", stage.config.jobs_table, True)


def test_load_job_eventually_consistent_is_the_same_get_at_half_the_units(stage):
    stage.put_job(jobId="j", userId="u", status="rendering", reservedCredits=4, createdAt=NOW)
    client, calls = recorded(stage)
    assert stage.store(client).load_job("j", consistent=False).reserved_credits == 4
    ((operation, params),) = calls
    assert (operation, params["TableName"], params["ConsistentRead"]) == ("GetItem", stage.config.jobs_table, False)


def test_load_job_of_nothing_is_none(stage):
    assert stage.store().load_job("nobody's job") is None


def settle_render(store, cost, balance=UNREAD):
    return decide(VideoRendered("e", "j", "u", Decimal(cost), "test"), Known(store.load_record("j"), UNREAD, balance), PriceBook(), NOW)


def test_load_record_eventually_consistent_is_one_get_of_the_settlement_record(stage):
    stage.seed_balance("u", 12)
    stage.store().commit_settlement(settle_render(stage.store(), 3))
    client, calls = recorded(stage)
    assert stage.store(client).load_record("j", consistent=False).charged_credits == 3
    ((operation, params),) = calls
    assert (operation, params["TableName"], params["ConsistentRead"]) == ("GetItem", stage.config.settlements_table, False)


def test_a_settlement_commits_in_one_transaction_whose_balance_guard_asks_for_the_item_on_failure(stage):
    stage.seed_balance("u", 12)
    settlement = settle_render(stage.store(), 3)
    client, calls = recorded(stage)
    stage.store(client).commit_settlement(settlement)
    ((operation, params),) = calls
    assert operation == "TransactWriteItems"
    balance, posting, record, job = params["TransactItems"]
    type_guards = " AND ".join(f"(attribute_not_exists({name}) OR attribute_type({name}, :number))" for name in ("remaining", "version"))
    assert balance["Update"]["ConditionExpression"] == f"{type_guards} AND remaining >= :amount"
    assert balance["Update"]["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert posting["Put"]["TableName"] == stage.config.user_ledger_table and record["Put"]["TableName"] == stage.config.settlements_table
    # The Jobs item is the pipeline's: an update of the settlement's mirror, never a whole-item put
    assert job["Update"]["TableName"] == stage.config.jobs_table
    assert stage.balance("u") == 9 and stage.job("j").settled_by_event == "e"


def test_a_first_attempt_cannot_settle_a_job_settled_before_settlement_records(stage):
    # Given a job settled by the code before settlement records (settledAs on its Jobs item, no record), and a render
    # decided on the record alone, as a first attempt decides it (the Jobs item unread)
    stage.seed_balance("u", 12)
    stage.put_job(jobId="j", userId="u", status="rendered", settledAs="rendered", settledByEvent="e-v2", chargedCredits=3, createdAt=NOW)
    settlement = settle_render(stage.store(), 3)
    # Then the Jobs item's condition refuses the write (the retry reads the item and finds a duplicate), and nothing moves
    # (make mutants found the condition's `attribute_not_exists(settledAs)` untested)
    with pytest.raises(StaleState):
        stage.store().commit_settlement(settlement)
    assert stage.balance("u") == 12 and stage.store().load_record("j") is None


def test_a_balance_that_moved_without_crossing_the_overdraft_threshold_does_not_refuse_the_settlement(stage):
    # Given a settlement of 3 decided on the job alone (covered), then a gift of 5 lands
    stage.seed_balance("u", 12)
    store = stage.store()
    settlement = settle_render(store, 3)
    store.commit_adjustment(adjustment_entry("u", 5, "gift", "gift-1", "test", NOW))
    # When it commits, the decision still holds: no retry for a concurrent change of the same user
    store.commit_settlement(settlement)
    assert stage.balance("u") == 14 == stage.ledger_sum("u")


def test_an_overdraft_decision_the_balance_no_longer_supports_is_refused_with_the_balance_from_aws(stage):
    # Given an overdraft decided on a balance of 2, then a gift of 5 lands
    stage.seed_balance("u", 2)
    store = stage.store()
    overdraft = settle_render(store, 3, balance=2)
    assert overdraft.is_overdraft
    store.commit_adjustment(adjustment_entry("u", 5, "gift", "gift-1", "test", NOW))
    # Then the guard refuses it, and the cancellation reason's Item (ALL_OLD) tells the balance: 7
    with pytest.raises(BalanceChanged) as refused:
        store.commit_settlement(overdraft)
    assert refused.value.balance == 7
    assert stage.balance("u") == 7 and stage.job("j") is None


def test_a_debit_decided_as_covered_is_refused_once_the_balance_no_longer_covers_it(stage):
    stage.seed_balance("u", 4)
    store = stage.store()
    covered = settle_render(store, 3)
    store.commit_adjustment(adjustment_entry("u", -2, "chargeback", "cb-1", "test", NOW))
    with pytest.raises(BalanceChanged) as refused:
        store.commit_settlement(covered)
    assert refused.value.balance == 2
    assert stage.balance("u") == 2 and stage.job("j") is None


def test_an_adjustment_cannot_be_written_twice(stage):
    store = stage.store()
    entry = adjustment_entry("u", 5, "gift", "gift-1", "test", NOW)
    store.commit_adjustment(entry)
    with pytest.raises(LedgerEntryTaken):
        store.commit_adjustment(entry)
    assert stage.balance("u") == 5 and len(stage.ledger("u")) == 1


def test_a_users_ledger_pages_through_the_index_in_time_order_and_filters_by_time(stage):
    store = stage.store()
    for day in range(1, 31):
        store.commit_adjustment(adjustment_entry("u", day, "daily", f"d{day}", "test", f"2026-11-{day:02d}T00:00:00.000Z"))
    entries = list(store.ledger_for_user("u"))
    assert [e.amount for e in entries] == list(range(1, 31))
    window = list(store.ledger_for_user("u", since="2026-11-10T00:00:00.000Z", until="2026-11-12T23:59:59.999Z"))
    assert [e.amount for e in window] == [10, 11, 12]

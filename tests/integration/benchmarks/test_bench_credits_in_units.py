"""Exact DynamoDB requests and capacity units of the credits-in paths (docs/capacity.md, "Credits in"), counted at
the botocore level against in-process moto with the dev stage's tables, as the render paths' are."""

from __future__ import annotations

from benchmarks.credits_in_units import CREDITS_IN_UNITS
from benchmarks.requests import _Recorder, _warm_up
from reconciler import bootstrap
from reconciler.domain.ledger import adjustment_entry, iso_timestamp


def billing(detail_type: str, event_id: str, **detail) -> dict:
    return {"id": event_id, "source": "credits.billing", "detail-type": detail_type, "detail": detail}


def test_credits_in_units_per_event(aws):
    dynamodb, config = aws.client("dynamodb"), aws.config
    service = bootstrap.build_credits_in_service(config, dynamodb=dynamodb, sqs=aws.client("sqs"))
    bootstrap.operations_store(config, dynamodb).commit_adjustment(adjustment_entry("u", 100, "opening", "open-u", "bench", iso_timestamp()))
    _warm_up(dynamodb)
    recorder = _Recorder(dynamodb)
    purchase = billing("credits.purchased", "e1", userId="u", credits=500, reference="pi_1", amountPaid="19.99", currency="USD")
    scenarios = {
        "purchase": purchase,
        "purchase delivered again": {**purchase, "id": "e2"},
        "grant": billing("credits.granted", "e3", userId="u", credits=50, reference="t-1", category="goodwill"),
        "refund within the balance": billing("credits.revoked", "e4", userId="u", credits=100, reference="re_1", category="refund"),
        "chargeback into overdraft": billing("credits.revoked", "e5", userId="u", credits=5000, reference="dp_1", category="chargeback"),
        "invalid": billing("credits.purchased", "e6", userId="u", credits=1, reference="pi_2"),
    }
    measured = {}
    for name, event in scenarios.items():
        recorder.reset()
        outcome = service.process(event)
        measured[name] = (outcome.kind, recorder.snapshot(), recorder.rru, recorder.wru)
    # docs/capacity.md's figures are these (benchmarks/credits_in_units.py, AWS's: the fidelity layer's read taken out)
    on_aws = {name: (kind, requests, reads, writes) for name, (kind, requests, reads, writes) in measured.items()}
    kind, requests, reads, writes = on_aws["chargeback into overdraft"]
    on_aws["chargeback into overdraft"] = (kind, {"TransactWriteItems": requests["TransactWriteItems"]}, reads - requests["GetItem"], writes)
    assert {name: figures[1:] for name, figures in on_aws.items() if name != "invalid"} == {
        name: figures for name, figures in CREDITS_IN_UNITS.items() if name != "invalid"
    }
    # One transaction: Credits 2 + the Ledger entry 2 + Ledger's by-user index 1; no read.
    assert measured["purchase"] == ("applied", {"TransactWriteItems": 1}, 0.0, 5.0)
    assert measured["grant"] == ("applied", {"TransactWriteItems": 1}, 0.0, 5.0)
    assert measured["refund within the balance"] == ("applied", {"TransactWriteItems": 1}, 0.0, 5.0)
    # A redelivery: the transaction is cancelled on the entry's condition (counted here as if billed, 4 WRU: AWS bills a
    # cancelled transaction's items), then one strong read of the entry (1 RRU) tells it is the same application.
    assert measured["purchase delivered again"] == ("duplicate", {"TransactWriteItems": 1, "GetItem": 1}, 1.0, 4.0)
    # An overdraft: the covered decision cancelled on the balance's guard (4 WRU), which returns the balance (ALL_OLD,
    # no read units on AWS), then the overdraft's transaction (5 WRU). The one GetItem (1 RRU) is not the reconciler's:
    # in-process, emulator/fidelity.py reads the item to hand the cancellation reason its ALL_OLD image as AWS does.
    assert measured["chargeback into overdraft"] == ("applied", {"TransactWriteItems": 2, "GetItem": 1}, 1.0, 9.0)
    assert measured["invalid"][:2] == ("rejected", {})


def test_stream_function_units_per_record_for_the_explanation(aws):
    """What the change check adds per Credits stream record (docs/capacity.md, "Credits in"): nothing, measured by the
    unit meter on the records the meter itself derives from the writes (NEW_AND_OLD_IMAGES); each is explained."""
    from benchmarks.credits_in_units import STREAM_UNITS
    from reconciler.repository.balance_event_store import decode_stream_record
    from tests.events import rendered

    dynamodb, config = aws.client("dynamodb"), aws.config
    credits_in = bootstrap.build_credits_in_service(config, dynamodb=dynamodb, sqs=aws.client("sqs"))
    settle = bootstrap.build_processor(config, dynamodb, aws.client("sqs"))
    holds = bootstrap.build_reservations(bootstrap.settlement_store(config, dynamodb), config)
    checks = bootstrap.build_balance_change_service()
    bootstrap.operations_store(config, dynamodb).commit_adjustment(adjustment_entry("v", 100, "opening", "open-v", "bench", iso_timestamp()))
    _warm_up(dynamodb)
    recorder = _Recorder(dynamodb)
    writes = {
        "purchase": lambda: credits_in.process(
            billing("credits.purchased", "s1", userId="v", credits=500, reference="pi_s", amountPaid="9", currency="USD")
        ),
        "hold": lambda: holds.reserve("job-s", "v", "test", 20),
        "render (held)": lambda: settle.process(rendered("job-s", "v", seconds=7)),
        "render (no hold)": lambda: settle.process(rendered("job-t", "v", seconds=3)),
    }
    measured = {}
    for name, write in writes.items():
        recorder.reset()
        write()
        (record,) = recorder.meter.stream_records[config.credits_table]
        record["dynamodb"]["SequenceNumber"] = str(len(measured) + 1)
        recorder.reset()
        outcome = checks.handle(decode_stream_record(record))
        assert outcome.kind == "explained"
        measured[name] = (recorder.snapshot(), recorder.rru, recorder.wru)
    assert measured == STREAM_UNITS


def test_the_change_record_keeps_every_credits_item_of_the_paths_under_one_write_unit(aws):
    """The change record rides on the Credits item: after every path the item is under DynamoDB's 1 KB write step (so
    each write costs what it did), and the record itself is bounded whatever the ids (a long one is kept as a digest)."""
    from benchmarks.common import item_size
    from benchmarks.units import WRITE_STEP
    from reconciler.domain.unexplained import change_record
    from reconciler.repository.dynamodb import to_item
    from tests.events import rendered

    dynamodb, config = aws.client("dynamodb"), aws.config
    credits_in = bootstrap.build_credits_in_service(config, dynamodb=dynamodb, sqs=aws.client("sqs"))
    settle = bootstrap.build_processor(config, dynamodb, aws.client("sqs"))
    holds = bootstrap.build_reservations(bootstrap.settlement_store(config, dynamodb), config)
    user = "user-" + "x" * 59  # a 64-character user id
    bootstrap.operations_store(config, dynamodb).commit_adjustment(adjustment_entry(user, 100, "opening", "o" * 64, "bench", iso_timestamp()))
    credits_in.process(billing("credits.granted", "z1", userId=user, credits=50, reference="p" * 64, category="promotional"))
    holds.reserve("j" * 64, user, "test", 20)
    settle.process(rendered("j" * 64, user, seconds=7))
    item = dynamodb.get_item(TableName=config.credits_table, Key=to_item({"userId": user}))["Item"]
    assert "lastChange" in item and item_size(item) < WRITE_STEP / 2
    worst = change_record({"remaining": -(10**15), "held": 10**15, "promotionalCredits": 10**15}, "j" * 768)
    assert item_size({"lastChange": to_item({"v": worst})["v"]}) <= 120


def test_a_credit_with_an_expiry_and_its_expiry_units(aws):
    """docs/ledger.md, "Credits that expire": the grant with an expiry pays the sparse index's write (+1 WRU); its
    expiry reads the books and writes one transaction."""
    from reconciler.repository.credit_expiry_store import CreditExpiryStore
    from reconciler.service.credit_expiry import CreditExpiryService

    dynamodb, config = aws.client("dynamodb"), aws.config
    now = ["2027-01-01T00:00:00.000Z"]
    service = bootstrap.build_credits_in_service(config, dynamodb=dynamodb, sqs=aws.client("sqs"), clock=lambda: now[0])
    expiry = CreditExpiryService(CreditExpiryStore(dynamodb, config), clock=lambda: now[0])
    _warm_up(dynamodb)
    recorder = _Recorder(dynamodb)
    grant = billing("credits.granted", "e1", userId="u", credits=50, reference="t-1", category="promotional", expiresAt="2027-01-02T00:00:00Z")
    assert service.process(grant).kind == "applied"
    # Credits 2 + the Ledger entry 2 + Ledger's by-user index 1 + the expiring-credits index 1
    assert (recorder.snapshot(), recorder.rru, recorder.wru) == ({"TransactWriteItems": 1}, 0.0, 6.0)
    recorder.reset()
    now[0] = "2027-01-02T00:05:00.000Z"
    assert [booked.expired for booked in expiry.run().expired] == [50]
    # The index Query (one item), the expiry id's strong read (1), the balance's version (1), the user's entries (two
    # Queries); then Credits 2 + the expiry entry 2 + its by-user index write 1 + the credit's update 2 + the credit
    # leaving the expiring-credits index 1 + its by-user index copy rewritten 1
    requests = recorder.snapshot()
    assert requests == {"Query": 3, "GetItem": 2, "TransactWriteItems": 1}, requests
    # Reads: the two strong GetItems 1 + 1, the indexes 0.5 + 0.5 (eventually consistent), UserLedger 1 (consistent)
    assert (recorder.rru, recorder.wru) == (4.0, 9.0), (recorder.rru, recorder.wru)

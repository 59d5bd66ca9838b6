"""The local event source mapping batches a shard's records as Lambda documents for DynamoDB streams: an invocation
when the batching window ends, the batch is full or the payload reaches its limit, the next window from the end of
the last invocation (AWS Lambda Developer Guide, "How Lambda processes records from stream and queue-based event
sources", Batching behavior); every record delivered once, in order, retries included. On a simulated clock and a
simulated shard (benchmarks/stream_batching.py), so every instant is exact; tests/integration/handlers/
test_balance_stream.py runs the window on moto's stream with the real handler."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from benchmarks.stream_batching import STREAM_ARN, CountingFunction, SimulatedClock, SimulatedShard, credits_record
from emulator.stream_poller import StreamPoller, lambda_record, mapping_settings

SEQUENCE_BASE = 10**20


def mapping(arrivals: list[float], function: Any, window: float = 30, **options: Any) -> tuple[SimulatedClock, StreamPoller]:
    clock = SimulatedClock()
    return clock, StreamPoller(SimulatedShard(clock, arrivals), STREAM_ARN, function, batching_window_s=window, clock=clock, **options)


def at(clock: SimulatedClock, poller: StreamPoller, seconds: float) -> int:
    clock.now = seconds
    return poller.poll()


def test_the_window_gathers_a_shards_records_and_the_next_one_begins_when_the_invocation_ends():
    function = CountingFunction()
    clock, poller = mapping([0, 1, 2, 29.75, 31], function)
    assert at(clock, poller, 0) == 0  # the mapping opened the shard at 0: its first window ends at 30
    assert at(clock, poller, 29.75) == 0 and poller.pending == 4 and poller.invocations == 0
    assert at(clock, poller, 30) == 4 and function.batches == [[0, 1, 2, 3]]
    assert at(clock, poller, 31) == 0 and at(clock, poller, 59.75) == 0  # the window begun at 30 holds the record of 31
    assert at(clock, poller, 60) == 1 and function.batches[-1] == [4]


def test_a_record_that_comes_a_window_after_the_last_invocation_goes_at_once():
    function = CountingFunction()
    clock, poller = mapping([0, 100, 100.1], function)
    assert at(clock, poller, 0) == 0 and at(clock, poller, 30) == 1
    assert at(clock, poller, 100) == 1 and function.batches == [[0], [1]]  # a quiet shard: no wait, no gain
    assert at(clock, poller, 100.25) == 0 and at(clock, poller, 130) == 1  # the next window began at 100


def test_a_full_batch_goes_before_the_window_ends_and_the_rest_waits_for_it():
    function = CountingFunction()
    clock, poller = mapping([index / 100 for index in range(250)], function, batch_size=100)
    assert at(clock, poller, 2.5) == 200 and [len(batch) for batch in function.batches] == [100, 100]
    assert at(clock, poller, 32.25) == 0 and at(clock, poller, 32.5) == 50


def test_a_window_of_0_sends_whatever_a_poll_read():
    function = CountingFunction()
    clock, poller = mapping([0, 0.1, 0.2, 0.3], function, window=0)
    assert [at(clock, poller, seconds) for seconds in (0, 0.25, 0.5)] == [1, 2, 1]
    assert function.batches == [[0], [1, 2], [3]]


def test_the_payload_limit_ends_a_batch_and_triggers_it_before_the_window_ends():
    size = len(json.dumps(lambda_record(credits_record(0), STREAM_ARN)).encode())
    assert all(len(json.dumps(lambda_record(credits_record(i), STREAM_ARN)).encode()) == size for i in range(7))
    function = CountingFunction()
    clock, poller = mapping([0] * 7, function, max_payload_bytes=3 * size + 10)
    assert at(clock, poller, 0) == 6 and function.batches == [[0, 1, 2], [3, 4, 5]]  # 3 records fit; 4 would not
    assert at(clock, poller, 29.75) == 0 and at(clock, poller, 30) == 1


@dataclass
class FlakyFunction:
    """Fails each record whose number is 3 mod 7 the first time it sees it, reporting it and every later record of
    the batch, as the real handler does (handlers/balance_stream.py: the batch stops at the first failure)."""

    clock: SimulatedClock
    succeeded: list[int] = field(default_factory=list)
    failed_at: dict[int, float] = field(default_factory=dict)
    retried_at: dict[int, float] = field(default_factory=dict)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        numbers = [int(r["dynamodb"]["SequenceNumber"]) - SEQUENCE_BASE for r in event["Records"]]
        if numbers[0] in self.failed_at:
            self.retried_at.setdefault(numbers[0], self.clock.now)
        for position, number in enumerate(numbers):
            if number % 7 == 3 and number not in self.failed_at:
                self.failed_at[number] = self.clock.now
                return {"batchItemFailures": [{"itemIdentifier": str(SEQUENCE_BASE + n)} for n in numbers[position:]]}
            self.succeeded.append(number)
        return {"batchItemFailures": []}


def test_no_record_is_lost_repeated_or_reordered_by_the_window_and_a_failed_batch_is_retried_at_the_next_poll():
    clock = SimulatedClock()
    function = FlakyFunction(clock)
    poller = StreamPoller(SimulatedShard(clock, [index / 2 for index in range(300)]), STREAM_ARN, function, batching_window_s=30, clock=clock)
    tick = 0
    while tick <= 800:
        at(clock, poller, tick / 4)
        tick += 1
    assert function.succeeded == list(range(300)) and poller.pending == 0
    assert len(function.failed_at) == 43  # 3, 10, ..., 297
    assert all(function.retried_at[number] == failed + 0.25 for number, failed in function.failed_at.items())
    assert poller.given_up == []


def test_a_batch_that_keeps_failing_is_given_up_at_the_limit_and_the_records_after_it_follow_in_order():
    clock = SimulatedClock()

    def refuses_5(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        numbers = [int(r["dynamodb"]["SequenceNumber"]) - SEQUENCE_BASE for r in event["Records"]]
        delivered.append(numbers)
        bad = [n for n in numbers if n >= 5] if 5 in numbers else []
        return {"batchItemFailures": [{"itemIdentifier": str(SEQUENCE_BASE + n)} for n in bad]}

    delivered: list[list[int]] = []
    arrivals = [0.0] * 10 + [31.0, 31.0]
    poller = StreamPoller(SimulatedShard(clock, arrivals), STREAM_ARN, refuses_5, batching_window_s=30, clock=clock, max_retry_attempts=2)
    assert [at(clock, poller, seconds) for seconds in (0, 30, 30.25, 30.5)] == [0, 5, 0, 0]
    assert delivered == [list(range(10)), list(range(5, 10)), list(range(5, 10))]
    info = poller.given_up[0]["DDBStreamBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (5, str(SEQUENCE_BASE + 5), str(SEQUENCE_BASE + 9))
    assert at(clock, poller, 60.25) == 0 and at(clock, poller, 60.5) == 2 and delivered[-1] == [10, 11]


def test_the_mapping_takes_its_window_from_the_template_and_lambdas_default_without_one():
    def template(**properties: Any) -> dict[str, dict]:
        return {"Compute": {"Resources": {"Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": properties}}}}

    assert mapping_settings(template(BatchSize=100, MaximumBatchingWindowInSeconds=30))["batching_window_s"] == 30
    assert mapping_settings(template(BatchSize=100)) == {"batch_size": 100, "max_retry_attempts": 50, "batching_window_s": 0}

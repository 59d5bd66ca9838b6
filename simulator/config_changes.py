"""Configuration changed while the money moves (issue #20): a deploy of new prices between a job's hold and its render,
or between a settlement's Lambda attempts; a deploy of new balance-event thresholds between a stream record's attempts.

The generator (`config_tasks`, a stream of its own) and what a deploy does to the function's containers. The prices
are judged at every commit (simulator.commits: a render is charged at the price of its hold when held for its model,
else at the prices deployed when it was decided); the thresholds by the balance events' invariants, against the
ground truth under the thresholds each attempt of a record ran with (simulator.balance_events).
"""

from __future__ import annotations

import json
import os
import random
from typing import TYPE_CHECKING

from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run

# What each deploy sets PRICE_OVERRIDES to on the dev stage (its overrides, hd-v1 2 and hd-v2 2.5, kept unless
# changed), as an operator deploys it: the oracle restates the resulting prices (oracle.PRICE_DEPLOYS).
PRICE_DEPLOYS = (
    {"hd-v1": "2", "hd-v2": "3", "test": "1.5"},
    {"hd-v1": "2", "hd-v2": "2.5", "standard-v1": "2.25", "test": "0.5"},
)
# The balance-events function's default thresholds a deploy may set (low, overdraft alert level): the stage's first.
THRESHOLD_DEPLOYS = ((10, 0), (30, 0), (3, -5), (60, -20))


def config_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> bool:
    """Price deploys among the tasks (in some runs); returns whether this run's stream gets threshold deploys."""
    if rng.random() < 0.4:
        for _ in range(rng.choice([1, 1, 2])):
            tasks.insert(rng.randint(1, max(1, len(tasks) - 1)), Task("deploy-prices"))
    return rng.random() < 0.4


def deploy_prices(run: Run) -> None:
    """A deploy of the next prices: the function's containers (settlements, the timer scan) and the hold function
    price with them from now on; a settlement decided before keeps what it decided on."""
    from reconciler import bootstrap
    from reconciler.config import RuntimeConfig
    from reconciler.domain.pricing import PriceBook

    if run.books.epoch >= len(PRICE_DEPLOYS):
        return
    config = RuntimeConfig.from_env({**os.environ, "PRICE_OVERRIDES": json.dumps(PRICE_DEPLOYS[run.books.epoch])})
    run.prices = PriceBook.with_overrides(config.price_overrides)
    for service in (bootstrap.event_processor().settlement, bootstrap.timer_scan().settlement):
        service.prices = run.prices
    run.books.epoch += 1
    run.result.covered["config:price-deploys"] += 1


def deploy_thresholds(rng: random.Random | None, current: tuple[int, int]) -> tuple[int, int]:
    """Another of the stage's threshold settings (`current` itself without `rng`), set on the stream function's container:
    a deploy between a record's attempts."""
    from reconciler import bootstrap
    from reconciler.domain.crossings import Thresholds

    chosen = current if rng is None else rng.choice([deployed for deployed in THRESHOLD_DEPLOYS if deployed != current])
    bootstrap.balance_event_service().defaults = Thresholds(*chosen)
    return chosen

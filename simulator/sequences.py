"""Orders and inputs the shuffled workload rarely produces, each generated on purpose (a stream of its own, so the
other generators' draws stay as they were): a hold the pipeline releases before its job's terminal event arrives;
a hold and an adjustment of 0 credits (both refused); an adjustment run again under its reference with another
amount (refused, never answered already-applied); an event of a job settled before settlement records that held
nothing; and two operators' fixes of one discrepancy at once, the second run between the first's read and its
write (one of them applies).
"""

from __future__ import annotations

import random

from simulator.scenario import MODELS, Task, envelope, terminal_event

TERMINAL = ("rendered", "failed")
# Damages a fix can repair trusting either side (a wrong `held` is not fixable trusting the balance).
RACED_DAMAGES = (("balance", (5, -3, 12)), ("extra-entry", (4, -6)), ("delete-entry", (0.0, 0.99)))


def sequence_tasks(rng: random.Random, setup: list[Task], tasks: list[Task]) -> None:
    opened = [(task.args[0], task.args[1]) for task in setup if task.kind == "adjust" and task.args[1]]
    if not opened:
        return
    if rng.random() < 0.5:
        _released_then_settled(rng, tasks, *rng.choice(opened))
    if rng.random() < 0.35:
        user = rng.choice(opened)[0]
        _insert(rng, tasks, Task("reserve", ("zero-0", user, rng.choice(MODELS), 0), "invalid"))
    if rng.random() < 0.35:
        _insert(rng, tasks, Task("adjust", (rng.choice(opened)[0], 0, "zero-0"), "refused"))
    if rng.random() < 0.4:
        amount = rng.choice([3, 12, -4])
        user = rng.choice(opened)[0]
        again = Task("adjust", (user, amount + rng.choice([1, -1, 10]), "reused-0"))  # the same reference, another amount
        _insert(rng, tasks, Task("sequence", (Task("adjust", (user, amount, "reused-0")), again)))
    if rng.random() < 0.4:
        _settled_before_records_unheld(rng, setup, tasks, rng.choice(opened)[0])
    if rng.random() < 0.4:
        _raced_fix(rng, setup, tasks, opened)


def _insert(rng: random.Random, tasks: list[Task], task: Task) -> None:
    tasks.insert(rng.randint(0, len(tasks)), task)


def _released_then_settled(rng: random.Random, tasks: list[Task], user: str, opening: int) -> None:
    """The pipeline holds, gives the hold back (the job will not render after all), and then its terminal event comes
    (maybe twice): the settlement must not release the hold a second time."""
    job_id = "released-0"
    event = terminal_event(rng.choice(TERMINAL), job_id, user, f"e-{job_id}", rng)
    steps = [Task("reserve", (job_id, user, rng.choice(MODELS), min(opening, rng.choice([1, 5])))), Task("release", (job_id, user))]
    steps += [Task("event", (event,), "valid") for _ in range(1 + (rng.random() < 0.3))]
    _insert(rng, tasks, Task("sequence", tuple(steps)))


def _settled_before_records_unheld(rng: random.Random, setup: list[Task], tasks: list[Task], user: str) -> None:
    """A job the code before settlement records settled with no reservation (so no reservedCredits on its item), and a
    late copy of its event or the contradicting one: a duplicate or a conflict, never a second settlement."""
    job_id, model, outcome, seconds = "v1-0", rng.choice(MODELS), rng.choice(TERMINAL), rng.choice([1, 7, 30])
    setup.append(Task("legacy-settled", (job_id, user, model, 0, outcome, seconds, "e-v1-0")))
    late = outcome if rng.random() < 0.5 else ("failed" if outcome == "rendered" else "rendered")
    detail: dict = {"jobId": job_id, "userId": user}
    if late == "rendered":
        detail.update(seconds=seconds, model=model)
    event_id = "e-v1-0" if late == outcome else "e-v1-0-other"
    _insert(rng, tasks, Task("event", (envelope(f"video.{late}", detail, event_id),), "valid"))


def _raced_fix(rng: random.Random, setup: list[Task], tasks: list[Task], opened: list[tuple[str, int]]) -> None:
    """Books damaged before the run, and a fix of them that another operator's fix of the same discrepancy races: the
    second runs whole between the first's read and its write (simulator.operators). Mostly a restore (trusting the
    ledger) raced by a correction, which moves neither remaining nor held: only the balance's version tells."""
    damaged = {task.args[1] for task in setup if task.kind == "damage-books"}
    claimed = {task.args[1] for task in setup if task.kind == "unfunded-hold"}
    candidates = sorted({user for user, _ in opened} - damaged - claimed)
    if not candidates:
        return
    user = rng.choice(candidates)
    kind, amounts = rng.choice(RACED_DAMAGES)
    setup.append(Task("damage-books", (kind, user, rng.choice(amounts))))
    trusts = ("ledger", "balance") if rng.random() < 0.7 else rng.choice([("balance", "ledger"), ("ledger", "ledger"), ("balance", "balance")])
    _insert(rng, tasks, Task("audit-fix", (user, *trusts)))

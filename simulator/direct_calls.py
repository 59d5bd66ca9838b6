"""The calls a run makes outside Lambda, each as its caller builds it: the hold function's reserve() and release()
(the pipeline's calls), the CLI's Adjuster; and the settlement use case as the container builds it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.faults import SimulatedTimeout
from simulator.records import ReserveCall
from simulator.scenario import Task

if TYPE_CHECKING:
    from simulator.run import Run


class DirectCalls:
    def __init__(self, run: Run) -> None:
        self.run = run

    def reserve(self, task: Task) -> None:
        """The pipeline's reserve() call: its answer, and the oracle's reason to refuse it when it returned."""
        from reconciler.domain.errors import InsufficientCredits, InvalidEvent, ReservationRefused

        attempt = self.run.attempt_begins()
        self.run.calls.append((task, attempt))
        self.run.local.task_epoch = self.run.books.epoch  # the hold is sized (its unit price taken) before its first call
        answers = {InvalidEvent: "invalid", InsufficientCredits: "insufficient", ReservationRefused: "refused"}
        expires_at = self.run.local.requested_expiry = self.run.expiries.requested(task)
        try:
            self.reservations().reserve(*task.args[:4], expires_at=expires_at)
            result = "held"  # or already in place
            if task.expect == "invalid":
                self.run.result.failures.append(f"reserve() accepted what settlement refuses: {task.describe()[:200]}")
        except (InvalidEvent, InsufficientCredits, ReservationRefused) as answer:
            result = next(name for kind, name in answers.items() if isinstance(answer, kind))
            if isinstance(answer, InvalidEvent) and expires_at is not None and task.expect != "invalid":
                result = self._expiry_passed_before_the_hold(task, answer, expires_at)
        except (Exception, SimulatedTimeout) as error:  # noqa: BLE001 - judged by the invariants: only an injected fault may cause it
            # The pipeline is told, or its process died mid-call: the write landed or not, the books must balance.
            result, attempt.error = ("timeout" if isinstance(error, SimulatedTimeout) else "gave-up"), error
        finally:
            self.run.attempt_ends(attempt)
        job_id, user, _, credits = task.args[:4]
        refusal = "invalid" if task.expect == "invalid" else self.run.books.refuses_reservation(job_id, user, credits)
        self.run.reserve_calls.append(ReserveCall(task, attempt, result, refusal))

    def _expiry_passed_before_the_hold(self, task: Task, refused: Any, expires_at: str) -> str:
        """An expiry of a few milliseconds can pass while the call waits on other workers: refused, as the contract says,
        only if the hold was decided at or after it ("now is ..." in the reason)."""
        decided = str(refused).rpartition("now is ")[2].rstrip(")")
        if refused.field != "expiresAt" or "must be in the future" not in str(refused) or decided < expires_at:
            self.run.result.failures.append(f"reserve() refused an expiry of {expires_at} ({refused}): {task.describe()[:200]}")
        self.run.result.covered["expiry:passed-before-the-hold"] += 1
        return "invalid"

    def adjust(self, task: Task) -> None:
        from reconciler.domain.errors import InvalidEvent
        from reconciler.ops.adjustments import Adjuster
        from reconciler.ops.operator_error import OpsError

        user, amount, reference = task.args
        if not amount and task.expect != "refused":
            return
        attempt = self.run.attempt_begins()
        self.run.calls.append((task, attempt))
        try:
            result = Adjuster(self.run.h.store, backoff=self.run.backoff).adjust(user, amount, "simulated", reference, "sim")
            self._judge_adjustment(task, result)
        except (OpsError, InvalidEvent):
            self.run.result.covered[f"adjustments:refused{':as-expected' if task.expect == 'refused' else ''}"] += 1
        except (Exception, SimulatedTimeout) as error:  # noqa: BLE001 - judged by the invariants: only an injected fault may cause it
            attempt.error = error
        finally:
            self.run.attempt_ends(attempt)

    def _judge_adjustment(self, task: Task, result: Any) -> None:
        """An adjustment the design refuses (0 credits) is refused; one answered already-applied found its reference
        applied for the same user and amount (another amount under a used reference is refused)."""
        from reconciler.ops.adjustments import ALREADY_APPLIED

        user, amount, reference = task.args
        if task.expect == "refused":
            self.run.result.failures.append(f"the Adjuster accepted an adjustment it must refuse ({result.status}): {task.describe()[:200]}")
        elif result.status == ALREADY_APPLIED and (result.entry.user_id, result.entry.signed_amount) != (user, amount):
            self.run.result.failures.append(
                f"the Adjuster answered already-applied for reference {reference!r}, used for {result.entry.signed_amount:+d} credits to "
                f"{result.entry.user_id!r}: {task.describe()[:200]}"
            )
        self.run.result.covered[f"adjustments:{result.status}"] += 1

    def reservations(self) -> Any:
        """The hold function's service, as bootstrap.build_reservations builds it, at the prices deployed now."""
        from reconciler.config import load_config
        from reconciler.service.reservations import ReservationService

        return ReservationService(self.run.h.store, self.run.prices, backoff=self.run.backoff, legacy_before=load_config().legacy_reservations_before)

    def release(self, task: Task) -> None:
        """The pipeline gives a job's hold back (the job will not render): reserve()'s counterpart."""
        from reconciler.domain.errors import InvalidEvent, ReservationRefused

        attempt = self.run.attempt_begins()
        self.run.calls.append((task, attempt))
        try:
            self.reservations().release(*task.args)
        except (InvalidEvent, ReservationRefused):
            self.run.result.covered["holds:release-refused"] += 1
        except (Exception, SimulatedTimeout) as error:  # noqa: BLE001 - judged by the invariants: only an injected fault may cause it
            attempt.error = error
        finally:
            self.run.attempt_ends(attempt)

    def settlement_service(self) -> Any:
        """A settlement use case as the container builds it (bootstrap.settlement_service), at the prices deployed now."""
        from reconciler import bootstrap
        from reconciler.config import load_config

        service = bootstrap.settlement_service(self.run.h.store, load_config())
        service.prices, service.backoff = self.run.prices, lambda deadline: self.run.backoff()
        return service

    def stage_prices(self) -> Any:
        """The stage's price book, as the hold function and the settlements build it (prices.json and its overrides)."""
        from reconciler import bootstrap
        from reconciler.config import load_config
        from reconciler.domain.pricing import PriceBook

        prices = PriceBook.with_overrides(load_config().price_overrides)
        for service in (bootstrap.event_processor().settlement, bootstrap.timer_scan().settlement):
            service.prices = prices  # a run starts at the stage's prices, whatever an earlier run deployed
        return prices

"""What a run records of each invocation and each call it makes, for the invariants of liveness: what the
simulator injected into every attempt, what the attempt did, and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.scenario import Task


@dataclass
class Attempt:
    """One Lambda attempt of an invocation, or one call of reserve() or the CLI's Adjuster."""

    writes_before: int  # the run's count of answered writes when the attempt began (CommitOracle.writes)
    writes_after: int = 0
    own_writes: int = 0
    faults: list[str] = field(default_factory=list)  # labels of the faults injected into its AWS calls
    fault_errors: list[BaseException] = field(default_factory=list)  # the errors those faults raised
    # Of those, the errors of faults the code retries itself (faults.RETRIED_BY_THE_CODE): none may end the attempt.
    retried_fault_errors: list[tuple[str, BaseException]] = field(default_factory=list)
    stale_reads: int = 0  # eventually consistent reads answered with an earlier version
    races: int = 0  # concurrent balance changes injected before its writes
    transactions: int = 0  # TransactWriteItems AWS answered, committed or cancelled
    balance_cancellations: int = 0  # of them, cancelled on the balance's condition alone
    unread_refusals: int = 0  # of them, cancelled on the condition of a Jobs item the attempt did not read
    covered_refusals: list[str] = field(default_factory=list)  # hold conditions that failed while the oracle's balance covered
    error: BaseException | None = None  # what left the handler (or the call)

    @property
    def interference(self) -> int:
        """Writes by anyone else (another worker, an injected race) while the attempt ran."""
        return self.writes_after - self.writes_before - self.own_writes

    @property
    def injected(self) -> int:
        return len(self.faults) + self.stale_reads + self.races

    def caused_by_a_fault(self) -> bool:
        """The error that ended the attempt is one the simulator injected into it, or was raised because of one
        (its chain of causes and contexts reaches it)."""
        seen, error = set(), self.error
        while error is not None and id(error) not in seen:
            if any(error is injected for injected in self.fault_errors):
                return True
            seen.add(id(error))
            error = error.__cause__ or error.__context__
        return False

    def ended_by_a_retried_fault(self) -> str | None:
        """The label of a fault the code retries itself whose error ended the attempt (its chain reaches it), if any."""
        seen, error = set(), self.error
        while error is not None and id(error) not in seen:
            label = next((label for label, injected in self.retried_fault_errors if error is injected), None)
            if label is not None:
                return label
            seen.add(id(error))
            error = error.__cause__ or error.__context__
        return None


@dataclass
class Invocation:
    """An event (or a timer-scan tick) delivered to the handler: Lambda's asynchronous invocation, up to three
    attempts with one request id."""

    task: Task
    request_id: str
    attempts: list[Attempt] = field(default_factory=list)
    summary: dict | None = None  # the handler's answer, if an attempt answered
    expected: str | None = None  # for an event: the oracle's outcome when the handler answered
    end: str = ""  # the outcome, or "on-failure-destination"


@dataclass
class ReserveCall:
    """One reserve() call of the pipeline, and what the oracle said of it when it returned."""

    task: Task
    attempt: Attempt
    result: str  # "held" (or in place), "insufficient", "refused", "invalid", "gave-up", "timeout"
    refusal: str | None = None  # the oracle's reason to refuse it at its return, if any

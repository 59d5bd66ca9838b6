"""The deployed shadow's use case on an in-memory log: each event decided once, a job settled once, nothing written
but the log (docs/migration.md step 1b)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import bootstrap
from reconciler.config import RuntimeConfig
from reconciler.service.shadow_decisions import ShadowDecider


class InMemoryShadowLog:
    """repository/shadow_log.py's behaviour: decisions by event, one claim per job (first wins, its own retry keeps it)."""

    def __init__(self) -> None:
        self.decisions: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, dict[str, Any]] = {}

    def decided(self, event_id: str, job_id: str | None) -> dict[str, Any] | None:
        return self.decisions.get(event_id)

    def settled(self, job_id: str) -> dict[str, Any] | None:
        return self.claims.get(job_id)

    def claim(self, decision: Mapping[str, Any]) -> bool:
        held = self.claims.setdefault(decision["jobId"], dict(decision))
        return held["eventId"] == decision["eventId"]

    def record(self, decision: Mapping[str, Any]) -> None:
        self.decisions[decision["eventId"]] = dict(decision)


class NoLiveReads:
    """The live store of a shadow beside v1: the decider must not need it on these paths."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the shadow read the live store ({name})")


def decider(log: InMemoryShadowLog) -> ShadowDecider:
    config = RuntimeConfig.for_stage("dev")
    return ShadowDecider(NoLiveReads(), lambda store: bootstrap.settlement_service(store, config), log)


def render(event_id: str, job: str = "job-a", seconds: int = 10) -> dict[str, Any]:
    detail = {"jobId": job, "userId": "u1", "seconds": seconds, "model": "test"}
    return {"id": event_id, "source": "video.generation", "detail-type": "video.rendered", "detail": detail}


def test_a_redelivered_event_is_its_first_decision():
    log = InMemoryShadowLog()
    first = decider(log).decide(render("ev-1"))
    assert (first["outcome"], first["balanceDelta"]) == ("settled", -10)
    assert decider(log).decide(render("ev-1")) == first
    assert list(log.decisions) == ["ev-1"] and list(log.claims) == ["job-a"]


def test_a_second_event_for_a_settled_job_moves_nothing():
    log = InMemoryShadowLog()
    decider(log).decide(render("ev-1"))
    again = decider(log).decide(render("ev-2", seconds=12))  # another event for the same job
    assert again["balanceDelta"] == 0 and again["outcome"] != "settled"
    assert log.claims["job-a"]["eventId"] == "ev-1"


def test_an_event_that_loses_the_claim_is_decided_again_against_it():
    # Given another container's event claimed the job between this one's read and its claim
    log = InMemoryShadowLog()

    class RacedLog(InMemoryShadowLog):
        def claim(self, decision: Mapping[str, Any]) -> bool:
            log.claims.setdefault(decision["jobId"], {**decision, "eventId": "ev-other", "settledAs": "rendered"})
            return log.claim(decision)

        def settled(self, job_id: str) -> dict[str, Any] | None:
            return log.settled(job_id)

        def record(self, decision: Mapping[str, Any]) -> None:
            log.record(decision)

    decided = decider(RacedLog()).decide(render("ev-1"))
    # Then it is recorded as what it is once the other's settlement is known: nothing posted twice
    assert decided["balanceDelta"] == 0 and decided["outcome"] != "settled"
    assert log.decisions["ev-1"] == decided


def test_an_invalid_event_is_recorded_as_rejected():
    log = InMemoryShadowLog()
    decided = decider(log).decide({"id": "ev-9", "source": "video.generation", "detail-type": "video.rendered", "detail": {"jobId": "j"}})
    assert decided["outcome"] == "rejected" and "userId" in decided["reason"]
    assert log.claims == {}

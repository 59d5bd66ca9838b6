"""`reconciler scan` settles a held job whose event was lost: the settlement updates the job's settlement record (the
break-glass policy's UpdateItem on Settlements-{stage}, which the least-privilege check wants a call behind)."""

from __future__ import annotations

from reconciler.contract import UNSETTLED_ATTRIBUTE, UNSETTLED_VALUE
from tests.integration.cli.test_holds_and_ledgers import OLD, reserve


def test_scan_settles_a_held_job_whose_event_was_lost_and_releases_its_hold(env, cli):
    # Given a user with 10 credits, a hold of 4 for a job, and the job rendered (1 s of test: 1 credit) with its event lost
    env.seed_balance("u1", 10)
    reserve(env, "job-held", "u1", 4)
    job = {"jobId": "job-held", "userId": "u1", "status": "rendered", "model": "test", "seconds": 1, "createdAt": OLD, "updatedAt": OLD}
    env.put("Jobs-dev", {**job, UNSETTLED_ATTRIBUTE: UNSETTLED_VALUE})
    # When the operator runs the timer scan
    run = cli("--json", "scan")
    # Then the job is settled from its hold: charged 1, the hold released, the record settled in place
    assert run.exit_code == 0, run.stderr
    assert run.json()["settled"] == ["job-held"]
    assert (env.balance("u1"), env.held("u1")) == (9, 0)
    record = env.record("job-held")
    assert (record.settled_as, record.charged_credits, record.hold_open) == ("rendered", 1, False)
    assert cli("audit", "u1").exit_code == 0

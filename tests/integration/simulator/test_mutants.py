"""`make mutants` (simulator/mutants.py): its mutations still apply to the source, and one mutant runs end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator import mutants


def test_every_mutation_still_applies_exactly_once_to_the_current_source():
    # Given the tool's mutations and the source as it is now
    # Then each one's text occurs exactly once in its file (the code moved otherwise: update the mutation)
    assert mutants.check_all() == []
    names = [m.name for m in mutants.MUTATIONS]
    assert len(names) >= 25 and len(set(names)) == len(names)
    # across the domain, the service, the adapters, the operator commands and the balance events
    assert {m.area for m in mutants.MUTATIONS} == {mutants.DOMAIN, mutants.SERVICE, mutants.ADAPTERS, mutants.OPERATORS, mutants.BALANCE_EVENTS}
    assert all(m.path.startswith("runtime/reconciler/") and m.tests for m in mutants.MUTATIONS)
    # and each has tests of its module to fall back on, all of which exist
    assert all((mutants.REPO_ROOT / test).exists() for m in mutants.MUTATIONS for test in m.tests)


def test_a_mutation_that_does_not_match_exactly_once_fails_loudly(tmp_path):
    # Given a copy of a file in which a mutation's text occurs twice, and one in which it is absent
    mutation = mutants.MUTATIONS[0]
    target = tmp_path / mutation.path
    target.parent.mkdir(parents=True)
    for text, count in ((mutation.old * 2, 2), ("nothing of it", 0)):
        target.write_text(text)
        # Then applying it raises, naming how often it occurs, and the file is left as it was
        with pytest.raises(mutants.MutationDoesNotApply, match=f"occurs {count} times"):
            mutants.apply(mutation, tmp_path)
        assert target.read_text() == text


def test_a_mutant_runs_in_a_copy_that_imports_its_own_source(tmp_path):
    # Given a copy of the checkout with one mutation applied
    mutation = next(m for m in mutants.MUTATIONS if m.name == "cost-truncated")
    copy = mutants.copy_tree(mutants.REPO_ROOT, tmp_path / "copy")
    mutants.apply(mutation, copy)
    # Then a process started as the tool starts the simulator imports the runtime and the simulator from the copy
    found = mutants.imported_from(copy)
    assert Path(found["reconciler"]).is_relative_to(copy) and Path(found["simulator"]).is_relative_to(copy)
    assert mutation.new in (copy / mutation.path).read_text()
    # and the checkout itself is untouched
    assert mutation.old in (mutants.REPO_ROOT / mutation.path).read_text()


def test_one_cheap_mutant_end_to_end_is_caught_at_seed_zero(tmp_path):
    # Given a mutant the simulator catches at its first seed (a render's cost truncated), and seed 0's verdict on the
    # unmutated source: it passes (test_simulator.py's default seeds run it in every `make test`)
    controls = mutants.Controls(mutants.REPO_ROOT, tmp_path)
    controls.verdicts[0] = "ok"
    mutation = next(m for m in mutants.MUTATIONS if m.name == "cost-truncated")
    # When the tool runs it with a budget of 3 seeds
    result = mutants.run_mutant(mutation, seeds=3, controls=controls, workdir=tmp_path, run_tests=False)
    # Then the simulator, run on the mutated copy, fails seed 0 with the oracle's price: the mutant is the code that ran
    assert result.caught and result.caught_at == 0 and result.seeds_run == 1, result
    assert "the price of" in result.failure, result.failure
    # and its row says so
    row = mutants.table([result], seeds=3, command="test", started=_now(), elapsed=1, jobs=1).splitlines()[-1]
    assert row.startswith("| 1 | `cost-truncated` |") and "| yes | 0 (1) |" in row


def _now():
    import datetime

    return datetime.datetime.now(datetime.UTC)

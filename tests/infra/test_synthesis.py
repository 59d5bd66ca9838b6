"""The session's synthesis cache: one synthesis per stage for all processes, and never a stale template."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.least_privilege import synthesis


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A copy of what the synthesis reads, standing in for the repository."""
    for name in synthesis.INPUTS:
        source = synthesis.REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    monkeypatch.setattr(synthesis, "REPO", tmp_path)
    monkeypatch.delenv("CDK_CONTEXT_JSON", raising=False)
    return tmp_path


@pytest.fixture
def synthesized(monkeypatch) -> list[str]:
    """Stands in for CDK synthesis: records each stage synthesized, returns one stack."""
    calls: list[str] = []

    def fake(stage: str) -> dict[str, synthesis.Stack]:
        calls.append(stage)
        return {f"stack-{stage}": synthesis.Stack({"Resources": {"N": len(calls)}}, stage == "prod", "111111111111", "us-east-1")}

    monkeypatch.setattr(synthesis, "synthesize", fake)
    return calls


def test_any_edit_to_an_input_changes_the_key_and_bytecode_does_not(repo, monkeypatch):
    before = synthesis.inputs_hash("dev")
    assert synthesis.inputs_hash("prod") != before
    (repo / "runtime" / "reconciler" / "__pycache__").mkdir(exist_ok=True)
    (repo / "runtime" / "reconciler" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert synthesis.inputs_hash("dev") == before
    for edited in ("infra/constructs/tables.py", "runtime/reconciler/contract.py", "cdk.json"):
        path = repo / edited
        original = path.read_text()
        path.write_text(original + "\n")
        assert synthesis.inputs_hash("dev") != before, f"editing {edited} kept the key"
        path.write_text(original)
    (repo / "infra" / "constructs" / "ledger_table.py").write_text("")  # a new source file
    assert synthesis.inputs_hash("dev") != before
    (repo / "infra" / "constructs" / "ledger_table.py").unlink()
    monkeypatch.setenv("CDK_CONTEXT_JSON", '{"x": 1}')
    assert synthesis.inputs_hash("dev") != before


def test_a_stage_is_synthesized_once_for_every_process_until_a_source_changes(repo, synthesized, tmp_path):
    directory = tmp_path / "cache"
    worker, controller = synthesis.TemplateCache(directory), synthesis.TemplateCache(directory)
    first = worker.stacks("prod")
    # Another process of the session reads the first one's result, the deployment fields included.
    assert controller.stacks("prod") == first
    assert controller.templates("prod") == {"stack-prod": {"Resources": {"N": 1}}}
    assert first["stack-prod"].termination_protection is True
    assert synthesized == ["prod"]
    controller.stacks("dev")
    assert synthesized == ["prod", "dev"]
    # An edited source is a new key: synthesized again, never the old template.
    (repo / "infra" / "app.py").write_text((repo / "infra" / "app.py").read_text() + "\n")
    assert synthesis.TemplateCache(directory).templates("prod") == {"stack-prod": {"Resources": {"N": 3}}}
    assert synthesized == ["prod", "dev", "prod"]


def _own_and_shadow_stacks(stage: str) -> dict[str, synthesis.Stack]:
    """Stands in for a synthesis of the stage's own stack and its deployed shadow's (`--context mode=shadow`)."""
    return {
        f"stack-{stage}": synthesis.Stack({"Resources": {"Own": 1}}, True, "111111111111", "us-east-1"),
        f"shadow-{stage}": synthesis.Stack({"Resources": {"Shadow": 1}}, False, "111111111111", "us-east-1", mode="shadow"),
    }


def test_a_stages_templates_are_its_own_apps_and_its_shadows_only_when_asked(repo, monkeypatch, tmp_path):
    # Given a stage whose synthesis holds its own stack and its deployed shadow's (`--context mode=shadow`)
    monkeypatch.setattr(synthesis, "synthesize", _own_and_shadow_stacks)
    cache = synthesis.TemplateCache(tmp_path / "cache")
    # Then the stage's templates (what a local stack is provisioned from) are its own: no shadow table or second rule
    assert cache.templates("dev") == {"stack-dev": {"Resources": {"Own": 1}}}
    assert cache.templates("dev", "shadow") == {"shadow-dev": {"Resources": {"Shadow": 1}}}
    # And the IAM check, which reads every role, gets both; another process reads the modes back from the cache file
    assert set(synthesis.TemplateCache(tmp_path / "cache").templates("dev", mode=None)) == {"stack-dev", "shadow-dev"}


def test_the_synthesis_uses_the_repositorys_runtime_even_under_a_test_patch(monkeypatch, tmp_path):
    from infra.constructs import reconciler_function

    seen = []

    def build_app(stage, outdir, mode=None):  # records what the function's asset would be built from
        seen.append(reconciler_function.RUNTIME_DIR)
        raise RuntimeError("stop before synthesizing")

    monkeypatch.setattr("infra.app.build_app", build_app)
    monkeypatch.setattr(reconciler_function, "RUNTIME_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="stop before"):
        synthesis.synthesize("dev")
    assert seen == [synthesis.REPO / "runtime"]
    assert reconciler_function.RUNTIME_DIR is tmp_path  # the test's patch is back


def test_a_process_the_session_starts_reads_the_sessions_stage_and_never_one_of_other_sources(repo, synthesized, tmp_path, monkeypatch):
    from emulator import stack

    # Given the session's cache holding prod, synthesized from the sources as they are
    directory = tmp_path / "cache"
    synthesis.TemplateCache(directory).stacks("prod")
    monkeypatch.setenv(stack.TEMPLATE_CACHE_VARIABLE, str(directory))
    monkeypatch.setattr(stack, "CHECKOUT", repo)  # the sources that process would synthesize from
    # Then emulator.stack (the demo's, the rehearsal's and `up`'s way to the templates) reads it from there
    assert stack._cached_templates("prod") == {"stack-prod": {"Resources": {"N": 1}}}
    # but not a stage the session has not synthesized, nor after a source changed, nor without the session's folder
    assert stack._cached_templates("dev") is None
    (repo / "runtime" / "reconciler" / "contract.py").write_text((repo / "runtime" / "reconciler" / "contract.py").read_text() + "\n")
    assert stack._cached_templates("prod") is None
    monkeypatch.delenv(stack.TEMPLATE_CACHE_VARIABLE)
    assert stack._cached_templates("prod") is None
    assert synthesized == ["prod"]


def test_a_process_the_session_starts_never_reads_the_stages_shadow(repo, monkeypatch, tmp_path):
    from emulator import stack

    # Given the session's cache holding dev's own stack and its deployed shadow's (the demo once got both: every
    # event dead-lettered twice, by the stage's rule and by the shadow's)
    monkeypatch.setattr(synthesis, "synthesize", _own_and_shadow_stacks)
    synthesis.TemplateCache(tmp_path / "cache").stacks("dev")
    monkeypatch.setenv(stack.TEMPLATE_CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setattr(stack, "CHECKOUT", repo)
    # Then a local stack of dev is provisioned from dev's own stack only
    assert stack._cached_templates("dev") == {"stack-dev": {"Resources": {"Own": 1}}}


def test_the_session_names_its_cache_to_the_processes_it_starts(request):
    from emulator import stack

    cache = synthesis.cache(request.config)
    if cache is None:
        pytest.skip("the recorder plugin (which makes the session's cache) is not loaded")
    assert os.environ[stack.TEMPLATE_CACHE_VARIABLE] == str(cache.directory)

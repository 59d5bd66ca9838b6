"""One snapshot per stack and stage: any resource change shows up in review; runtime edits do not."""

from __future__ import annotations

import shutil

import pytest
from aws_cdk.assertions import Template
from infra_helpers import STACK_KINDS, normalised

from infra.app import build_app
from infra.constructs import reconciler_function
from reconciler.contract import STAGES


@pytest.mark.parametrize("kind", STACK_KINDS)
def test_stack_matches_snapshot(synthesized, kind, snapshot):
    assert normalised(synthesized.template(kind).to_json()) == snapshot


@pytest.mark.parametrize("stage", STAGES)
def test_shadow_stack_matches_snapshot(synthesize_shadow, stage, snapshot):
    # The deployed shadow (`--context mode=shadow`): the one stack that mode builds
    assert normalised(synthesize_shadow(stage).to_json()) == snapshot


def test_runtime_edits_do_not_change_the_normalised_template(synthesize, monkeypatch, tmp_path):
    # Given a copy of the runtime with one handler edited
    runtime = tmp_path / "runtime"
    shutil.copytree(reconciler_function.RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
    (runtime / "reconciler" / "__init__.py").write_text('"""edited"""\n')
    monkeypatch.setattr(reconciler_function, "RUNTIME_DIR", runtime)
    # When the compute stack is built from it
    app = build_app("dev", outdir=str(tmp_path / "out"))
    edited = Template.from_stack(app.node.find_child("cc-reconciler-compute-dev")).to_json()
    original = synthesize("dev").compute.to_json()
    # Then only the masked asset hash differs
    assert edited != original, "the edit should have produced a new asset"
    assert normalised(edited) == normalised(original)

"""Each stage's synthesized app, once per test session for every process of it (the xdist workers and controller).

The infra tests (tests/infra/conftest.py) and the recorder's check (recorder.py) need the same three stages. A
stage is synthesized by the first process that asks for it and written to the session's cache directory; the
others read it. An entry is keyed by the stage and a hash of everything the synthesis reads from the repository
(infra/, runtime/ for the Lambda asset, cdk.json, the CLI's context), so a changed source never serves an old
template. The directory belongs to one session (made by the controller, removed when it ends): installed
packages and Node cannot go stale between runs either.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator import stack as stack_module

try:
    import fcntl
except ImportError:  # Windows: no lock; two processes may then both synthesize a stage, and either write is whole
    fcntl = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[2]
INPUTS = stack_module.SYNTHESIS_INPUTS
WORKER_INPUT = "aws_synthesis_cache"


@dataclass(frozen=True)
class Stack:
    template: dict[str, Any]
    # As the CLI deploys it (from the cloud assembly's manifest).
    termination_protection: bool
    account: str
    region: str
    # The app that builds it: "full" (`make deploy`: the stage) or "shadow" (`--context mode=shadow`, beside a live v1).
    mode: str = "full"


def inputs_hash(stage: str) -> str:
    return stack_module.inputs_hash(stage, REPO)


def synthesize(stage: str) -> dict[str, Stack]:
    """Stack display name -> stack, synthesized in this process from the repository's sources."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.app import build_app
    from infra.constructs import reconciler_function

    # The cache serves every process: it holds the repository's app, never one a test patched (the snapshot test
    # points RUNTIME_DIR at an edited copy and may be the first to ask for dev).
    patched, reconciler_function.RUNTIME_DIR = reconciler_function.RUNTIME_DIR, REPO / "runtime"
    try:
        stacks = {}
        for mode in ("full", "shadow"):  # the stage's stacks, and its deployed shadow's (`--context mode=shadow`)
            with tempfile.TemporaryDirectory(prefix="cc-reconciler-synth-") as outdir:
                assembly = build_app(stage, outdir, mode).synth()
                stacks.update(
                    {
                        stack.display_name: Stack(
                            template=stack.template,
                            termination_protection=bool(stack.termination_protection),
                            account=stack.environment.account,
                            region=stack.environment.region,
                            mode=mode,
                        )
                        for stack in assembly.stacks
                    }
                )
        return stacks
    finally:
        reconciler_function.RUNTIME_DIR = patched


class TemplateCache:
    """The session's synthesized stages in `directory`, shared by every process of the session."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._read: dict[str, dict[str, Stack]] = {}

    def stacks(self, stage: str) -> dict[str, Stack]:
        key = f"{stage}-{inputs_hash(stage)}"
        if key not in self._read:
            self._read[key] = self._load_or_synthesize(stage, self.directory / f"{key}.json")
        return self._read[key]

    def templates(self, stage: str, mode: str | None = "full") -> dict[str, dict]:
        """The templates of one app of the stage: its own stacks ("full", what the local stack provisions), its
        deployed shadow's ("shadow"), or both (None: the IAM check reads every role). Never both by default: a stage
        provisioned with its shadow's template would get the shadow's table, queue and second rule on v1's pattern."""
        return {name: stack.template for name, stack in self.stacks(stage).items() if mode is None or stack.mode == mode}

    def _load_or_synthesize(self, stage: str, path: Path) -> dict[str, Stack]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with path.with_suffix(".lock").open("w") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process synthesizing this stage: wait for its result
            if not path.exists():
                stacks = synthesize(stage)
                written = path.with_suffix(f".{os.getpid()}.tmp")
                written.write_text(json.dumps({name: vars(stack) for name, stack in stacks.items()}))
                os.replace(written, path)  # whole or absent, for a reader without the lock
                return stacks
        return {name: Stack(**fields) for name, fields in json.loads(path.read_text()).items()}


_CACHE = pytest.StashKey[TemplateCache]()


# --- the session's directory: made by the controller (or the only process), handed to the xdist workers ----------


def configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        config.stash[_CACHE] = TemplateCache(Path(tempfile.mkdtemp(prefix="cc-reconciler-templates-")))
    elif WORKER_INPUT in workerinput:
        config.stash[_CACHE] = TemplateCache(Path(workerinput[WORKER_INPUT]))
    if _CACHE in config.stash:  # and for the processes the tests start (emulator/stack.py, templates_for)
        os.environ[stack_module.TEMPLATE_CACHE_VARIABLE] = str(config.stash[_CACHE].directory)


def configure_node(node: Any) -> None:  # pytest-xdist, on the controller, for each worker it starts
    node.workerinput[WORKER_INPUT] = str(node.config.stash[_CACHE].directory)


def unconfigure(config: pytest.Config) -> None:
    os.environ.pop(stack_module.TEMPLATE_CACHE_VARIABLE, None)
    if not hasattr(config, "workerinput") and _CACHE in config.stash:
        shutil.rmtree(config.stash[_CACHE].directory, ignore_errors=True)


def cache(config: pytest.Config) -> TemplateCache | None:
    """The session's cache, or None when the plugin that makes it (recorder.py) is not loaded."""
    return config.stash.get(_CACHE, None)


def cache_or_own(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> TemplateCache:
    """The session's cache, else (the plugin not loaded) one of this process's own."""
    return cache(config) or TemplateCache(tmp_path_factory.mktemp("cdk-templates"))

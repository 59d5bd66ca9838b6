"""One moto server per session (127.0.0.1); each test gets freshly provisioned resources on it."""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from emulator.cli import app as emulator_app
from emulator.server import LOCAL_ENV, reset
from emulator.stack import LocalStack, provision_stack
from reconciler.cli.main import app
from reconciler.ops.target import STATE_DIR_ENV
from tests.aws import Aws


@pytest.fixture(scope="session")
def endpoint(moto_endpoint):
    """The integration tier's one moto server of the session (tests/integration/conftest.py)."""
    return moto_endpoint


@pytest.fixture
def env(endpoint, dev_templates, tmp_path, monkeypatch) -> Aws:
    """Given a fresh local dev stack, saved where `--local` looks for it, and local-only credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in LOCAL_ENV.items():
        monkeypatch.setenv(name, value)
    reset(endpoint)
    stack = provision_stack(endpoint, "dev", templates=dev_templates)
    stack.save(tmp_path / "state" / "dev.json")
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    return Aws(stack.resources, stack.session(), stack.endpoint)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture(scope="session")
def cli_command():
    """The click command of the app, built once (typer builds it again on every CliRunner.invoke: 0.15 s)."""
    import typer.main

    return typer.main.get_command(app)


@pytest.fixture(scope="session")
def emulator_command():
    """The click command of the emulator's command line (`python -m emulator`), built once."""
    import typer.main

    return typer.main.get_command(emulator_app)


@pytest.fixture
def in_process(cli_command, emulator_command, monkeypatch):
    """Runs one of the two apps in-process with the click command built once for the session (typer builds it again
    on every CliRunner.invoke otherwise)."""
    import typer.testing

    commands = {id(app): cli_command, id(emulator_app): emulator_command}
    monkeypatch.setattr(typer.testing, "_get_command", lambda typer_app: commands[id(typer_app)])
    runner = CliRunner()

    def runner_of(typer_app, prefix: list[str]):
        def run(*args: str) -> Run:
            result = runner.invoke(typer_app, [*(prefix if args else []), *args])
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception  # a bug, not an operator error: show its traceback
            return Run(result.exit_code, result.stdout, result.stderr)

        return run

    return runner_of


@pytest.fixture
def cli(in_process):
    """Runs `reconciler --local --no-progress ARGS` in-process (`local=False`: without --local)."""
    with_local, without = in_process(app, ["--local", "--no-progress"]), in_process(app, ["--no-progress"])
    return lambda *args, local=True: (with_local if local else without)(*args)


@pytest.fixture
def emulate(in_process):
    """Runs `python -m emulator --no-progress ARGS` in-process (send, seed, deliver: the stack `env` saved)."""
    return in_process(emulator_app, ["--no-progress"])


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.exit_code != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def one_line_error():
    return assert_one_line_error


@pytest.fixture
def console():
    """Runs the INSTALLED `reconciler` console script in a subprocess, from `/`, where neither infra nor the
    emulator can be imported, so packaging and import faults (a module only importable from the checkout) are caught."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "reconciler")

    def run(*args: str, stdin: str | None = None, timeout: float = 90) -> Run:
        done = subprocess.run(
            [script, *(["--no-progress"] if args else []), *args],
            cwd="/",
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": ""},
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run


@dataclass
class ModuleStack:
    aws: Aws
    state_dir: Path
    endpoint: str
    sentinel: str  # a queue only this module's provisioning made: gone after another module's reset


@pytest.fixture(scope="module")
def module_stack(endpoint, tmp_path_factory):
    """One local dev stack for a whole module, as `python -m emulator up` leaves it (functions, alarms, archive, log
    groups; saved where `--local` looks), without its delivery loop, on the session's moto server. Tests of the module
    share it, each with users, jobs and messages of its own; `installed` provisions it again only if a test of another
    module reset the server in between (xdist may run one between this module's tests)."""
    return ModuleStack(_provision_module_stack(endpoint), tmp_path_factory.mktemp("module-stack") / "state", endpoint, "")


def _provision_module_stack(endpoint: str) -> Aws:
    reset(endpoint)
    stack = provision_stack(endpoint, "dev", operable=True)
    return Aws(stack.resources, stack.session(), endpoint)


def _still_there(module: ModuleStack) -> bool:
    from botocore.exceptions import ClientError

    if not module.sentinel:
        return False
    try:
        module.aws.client("sqs").get_queue_url(QueueName=module.sentinel)
    except ClientError:
        return False
    return True


@pytest.fixture
def installed(module_stack, console, monkeypatch):
    """The INSTALLED `reconciler` (`console`: a subprocess from `/`) against the module's stack, with `--local`
    finding it and the stack's own credentials: as an operator runs it beside `python -m emulator up`."""
    if not _still_there(module_stack):
        if module_stack.sentinel:  # another module's test reset the server since
            module_stack.aws = _provision_module_stack(module_stack.endpoint)
        module_stack.sentinel = f"module-stack-{uuid.uuid4().hex}"
        module_stack.aws.client("sqs").create_queue(QueueName=module_stack.sentinel)
        LocalStack(module_stack.endpoint, module_stack.aws.resources).save(module_stack.state_dir / "dev.json")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in LOCAL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(STATE_DIR_ENV, str(module_stack.state_dir))
    return console


def on_a_terminal(args: list[str], cwd: Path, prompt: bytes, answers: list[bytes]) -> tuple[bytes, bytes, int]:
    """Runs the installed `reconciler --no-progress ARGS` with stdin and stderr on a pseudo-terminal and stdout piped,
    typing each answer after the prompt's next appearance; returns (what the terminal showed, stdout, exit code)."""
    import pty
    import subprocess

    master, slave = pty.openpty()
    script = os.path.join(os.path.dirname(sys.executable), "reconciler")
    process = subprocess.Popen([script, "--no-progress", *args], stdin=slave, stderr=slave, stdout=subprocess.PIPE, cwd=cwd)
    os.close(slave)
    seen = b""
    for number, answer in enumerate(answers, 1):
        while seen.count(prompt) < number:
            chunk = os.read(master, 1024)
            assert chunk, seen
            seen += chunk
        os.write(master, answer)
    stdout, _ = process.communicate(timeout=60)
    os.close(master)
    return seen, stdout, process.returncode


CHECKOUT = Path(__file__).resolve().parents[3]


def emulator_process(*args: str) -> list[str]:
    """`python -m emulator ARGS`, run from the checkout (the emulator is not installed: it lives there)."""
    return [sys.executable, "-m", "emulator", *args]


@pytest.fixture
def emulator_console():
    """Runs `python -m emulator ARGS` in a subprocess from the checkout, as a developer does."""
    import subprocess

    def run(*args: str, env: dict | None = None, timeout: float = 90) -> Run:
        done = subprocess.run(emulator_process("--no-progress", *args), cwd=CHECKOUT, capture_output=True, text=True, timeout=timeout, env=env)
        return Run(done.returncode, done.stdout, done.stderr)

    return run


def _evaluation_option(module) -> list[str]:
    seconds = getattr(module, "ALARM_EVALUATION_SECONDS", None)
    return ["--alarm-evaluation-seconds", str(seconds)] if seconds else []


@dataclass
class RunningStack:
    endpoint: str
    state_dir: object
    log: object  # the stderr of `up`: its progress and one line per delivered event
    stage: str


@pytest.fixture(scope="module")
def running_stack(request, tmp_path_factory, stage_templates):
    """`python -m emulator --stage prod up` as a developer starts it (a subprocess, from the checkout), with this
    session's synthesized templates (--templates) so it does not synthesize again. One per module, stopped when the
    module's tests are done: a stack left up polls its queue, stream and alarms for the rest of the run, and idle
    for a session it cost more CPU (about 12 % of a core, each worker its own) than starting one per module (5 s).
    A module that waits for alarms sets ALARM_EVALUATION_SECONDS (`up --alarm-evaluation-seconds`)."""
    import subprocess
    import time

    base = tmp_path_factory.mktemp("local-up")
    templates = base / "cdk.out"
    templates.mkdir()
    for name, template in stage_templates("prod").items():
        (templates / f"{name}.template.json").write_text(json.dumps(template))
    state_dir, log = base / "state", base / "local-up.log"
    environment = {**os.environ, STATE_DIR_ENV: str(state_dir), "PYTHONPATH": ""}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        environment.pop(name, None)
    with log.open("w") as log_file:
        process = subprocess.Popen(
            emulator_process("--stage", "prod", "up", "--templates", str(templates), *_evaluation_option(request.module)),
            cwd=CHECKOUT,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=environment,
            text=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not (state_dir / "prod.json").exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        endpoint = json.loads((state_dir / "prod.json").read_text())["endpoint"]
        yield RunningStack(endpoint, state_dir, log, "prod")
    finally:
        # As a developer stops a background stack: `down` (SIGTERM to the pid in the state file)
        stopped = subprocess.run(
            emulator_process("--stage", "prod", "down"),
            cwd=CHECKOUT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert not (state_dir / "prod.json").exists(), "up left its state file behind"

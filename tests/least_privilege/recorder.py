"""pytest plugin: record every AWS call the suite causes and hold the synthesized IAM policies to them.

- Recording: botocore's `BaseClient._make_api_call` is wrapped when the plugin loads. The wrapper chains to the
  implementation installed before it (e.g. a simulator's fidelity patch) and always calls through, so it changes
  nothing; a patch installed later wraps this one and must call through as well. Each call is attributed to a
  principal by its call stack (calls.attribute) and turned into the IAM authorisations it needs (calls.needs,
  per item for transactions).
- pytest-xdist: each worker hands its records to the controller through `workeroutput`; the controller merges
  them when the workers finish and checks once.
- Checking (only on a full run, `pytest` / `make test` with the configured test paths and no -k/-m/--lf or
  deselection, or with --aws-calls-check): every stage's templates are taken from the session's synthesis cache
  (synthesis.py: the infra tests have synthesized them by then; a stage they did not is synthesized here) and
    * each function call must be allowed by the function's role, and each grant of the role must be used by a
      function call (or be one of the platform grants in policies.PLATFORM_GRANTS, with its reason);
    * each CLI call must be allowed by the break-glass operator policy, each read also by the read-only one,
      and each grant of both policies must be used.
  Any finding fails the run (exit status 1) with one line per finding.
- `--aws-calls-report PATH` writes the observed calls (principal, action, resource, code paths) as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from tests.least_privilege import synthesis
from tests.least_privilege.calls import Need, attribute, needs

_lock = threading.Lock()
# (principal, action, resource) -> code paths
_records: dict[tuple[str, str, str], set[str]] = defaultdict(set)
_findings: list[str] = []
_INSTALLED_FLAG = "_reconciler_call_recorder"


# A call refused because its resource does not exist (tests of a deleted queue or topic) needs no grant.
_MISSING = {"ResourceNotFoundException", "NotFound", "NotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def _record(client, operation_name: str, api_params: dict, frame) -> None:
    service = client.meta.service_model.service_name
    principal, code_path = attribute(frame)
    for need in needs(service, operation_name, api_params or {}):
        with _lock:
            _records[(principal, need.action, need.resource)].add(code_path)


def _missing_resource(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in _MISSING


def install() -> None:
    from botocore.client import BaseClient

    previous = BaseClient._make_api_call
    if getattr(previous, _INSTALLED_FLAG, False):
        return

    def _make_api_call(self, operation_name, api_params):
        caller = sys._getframe(1)
        try:
            result = previous(self, operation_name, api_params)
        except Exception as error:
            if not _missing_resource(error):
                _safely_record(self, operation_name, api_params, caller)
            raise
        _safely_record(self, operation_name, api_params, caller)
        return result

    setattr(_make_api_call, _INSTALLED_FLAG, True)
    _make_api_call.__wrapped__ = previous  # type: ignore[attr-defined]
    BaseClient._make_api_call = _make_api_call


def _safely_record(client, operation_name, api_params, frame) -> None:
    try:
        _record(client, operation_name, api_params, frame)
    except Exception as error:  # noqa: BLE001 - recording must never change what the call does
        with _lock:
            _records[("unrecorded", f"{type(error).__name__}: {error}", operation_name)].add("recorder")


def records() -> list[list]:
    with _lock:
        return [[principal, action, resource, sorted(paths)] for (principal, action, resource), paths in sorted(_records.items())]


def merge(rows: list[list]) -> None:
    with _lock:
        for principal, action, resource, paths in rows:
            _records[(principal, action, resource)].update(paths)


# --- hooks -----------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aws-calls", "AWS calls versus the synthesized IAM policies")
    group.addoption("--aws-calls-check", action="store_true", help="check even on a partial run")
    group.addoption("--no-aws-calls-check", action="store_true", help="never check")
    group.addoption("--aws-calls-report", metavar="PATH", help="write the observed calls as JSON")


def pytest_configure(config: pytest.Config) -> None:
    install()  # after the initial conftests: tests/conftest.py's fidelity patch is already in, and gets wrapped
    synthesis.configure(config)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook
def pytest_configure_node(node) -> None:
    synthesis.configure_node(node)


def pytest_unconfigure(config: pytest.Config) -> None:
    synthesis.unconfigure(config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # Stay outermost: a patch installed later (by a fixture) that refuses a call without calling through would
    # otherwise hide it. Wrapping again costs a second record of the same call, and records are sets.
    install()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _full_run(config: pytest.Config) -> bool:
    option = config.option
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not option.keyword
        and not option.markexpr
        and not getattr(option, "lf", False)
        and not getattr(option, "deselect", None)
    )


def _wanted(config: pytest.Config) -> bool:
    if config.getoption("--no-aws-calls-check") or os.environ.get("AWS_CALLS_CHECK") == "0":
        return False
    if config.getoption("collectonly", False):  # nothing ran: no call to compare with the policies
        return False
    return config.getoption("--aws-calls-check") or _full_run(config)


def _synthesize_all(config: pytest.Config | None = None) -> dict[str, dict]:
    from reconciler.contract import STAGES

    cache = synthesis.cache(config) if config is not None else None
    if cache is not None:
        return {stage: cache.templates(stage, mode=None) for stage in STAGES}  # the shadow's role too
    return {stage: {name: stack.template for name, stack in synthesis.synthesize(stage).items()} for stage in STAGES}


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: `-p no:xdist` must still load this plugin
def pytest_testnodedown(node, error) -> None:  # pytest-xdist, on the controller
    merge(node.workeroutput.get("aws_calls", []))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _is_worker(config):
        config.workeroutput["aws_calls"] = records()
        return
    report = config.getoption("--aws-calls-report")
    if report:
        Path(report).write_text(json.dumps(records(), indent=1) + "\n")
    if not _wanted(config):
        return
    # After a failed or interrupted run some code paths did not run: only calls that are not allowed count.
    _findings.extend(check(records(), complete=exitstatus == 0, templates=_synthesize_all(config)))
    if _findings:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _is_worker(config) or not _findings:
        return
    terminalreporter.section("AWS calls versus the synthesized IAM policies", sep="=", red=True)
    for finding in _findings:
        terminalreporter.line(finding, red=True)
    terminalreporter.line("(tests/least_privilege: fix the policy in infra/constructs, or the code path that calls)")


def check(rows: list[list], complete: bool = True, templates: dict[str, dict] | None = None) -> list[str]:
    """Checks the calls against every stage's templates (synthesized here unless given); one line per finding."""
    templates = templates or _synthesize_all()
    from infra.config import config_for
    from reconciler.contract import STAGES
    from tests.least_privilege.policies import Observed, Templates, check_function, check_operator, check_shadow_function

    by_principal: dict[str, dict[Need, set[str]]] = defaultdict(dict)
    findings = [f"a call could not be recorded: {action} ({resource})" for principal, action, resource, _ in rows if principal == "unrecorded"]
    for principal, action, resource, paths in rows:
        by_principal[principal].setdefault(Need(action, resource), set()).update(paths)
    observed = Observed(dict(by_principal))
    for stage in STAGES:
        config = config_for(stage)
        stage_templates = Templates(stage, config.account, config.region, templates[stage])
        findings += check_function(stage_templates, observed, config.triage_enabled)
        findings += check_operator(stage_templates, observed)
        findings += check_shadow_function(stage_templates, observed)
    if not complete:
        findings = [f for f in findings if "never calls" not in f and "which no function code path calls" not in f]
    return findings

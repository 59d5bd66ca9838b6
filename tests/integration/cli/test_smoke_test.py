"""scripts/smoke-test.py against the local stack, as CI runs it (a subprocess): it passes, it runs from any Python,
and the product's consumers (a rule on the pipeline's events, the balance events) have nothing to see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.stream_poller import StreamPoller, balance_function_environment, capture_published_events, read_captured
from reconciler import bootstrap
from reconciler.config import load_balance_config
from reconciler.handlers import balance_stream
from reconciler.ops.adjustments import Adjuster
from reconciler.repository.balance_event_store import BalanceEventLog

REPO = Path(__file__).resolve().parents[3]
SMOKE_USER = "smoke-test-user"
# What a consumer of the pipeline's render events subscribes to: the event contract (docs/contract.md, "Events").
PRODUCT_RULE = {"source": ["video.generation"], "detail-type": ["video.rendered", "video.failed"]}


def smoke_test(env, timeout: int = 30) -> subprocess.CompletedProcess:
    # The script as CI runs it, as a subprocess; it uses this session's stack (starting its own would synthesize the
    # templates again: `--env local` alone is what `make`/CI run)
    command = [sys.executable, str(REPO / "scripts" / "smoke-test.py"), "--env", "local", "--endpoint-url", env.stack.endpoint]
    return subprocess.run([*command, "--timeout", str(timeout)], capture_output=True, text=True, timeout=120, cwd=REPO)


def test_smoke_test_passes_against_the_local_stack(env):
    done = smoke_test(env)
    assert done.returncode == 0, done.stderr
    assert "smoke test passed" in done.stdout
    assert "[smoke] published a reconciler.smoke-test video.rendered" in done.stderr  # progress, on stderr
    result = json.loads(done.stdout.split("smoke test passed: ", 1)[1])
    # The local float was funded, then charged one credit by the function, from its event
    assert (result["charged"], result["balanceAfter"]) == (1, result["balanceBefore"] - 1)
    job = env.store().get_job(result["jobId"])
    assert job.settled_by_event == result["eventId"] and job.user_id == SMOKE_USER and job.settled_as == "rendered"


def product_rule(env) -> str:
    """A consumer of the pipeline's events on the local bus: its rule and its queue (URL returned)."""
    sqs, events = env.client("sqs"), env.client("events")
    url = sqs.create_queue(QueueName="product-render-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="product-render-consumer", EventPattern=json.dumps(PRODUCT_RULE), State="ENABLED")
    events.put_targets(Rule="product-render-consumer", Targets=[{"Id": "product", "Arn": arn}])
    return url


@pytest.fixture
def balance_events_function(env, dev_templates, monkeypatch):
    """The real balance-events handler on the local Credits stream, configured as the template configures it."""
    for name, value in {**env.stack.environment(), **balance_function_environment(dev_templates, env.stack.resources.tables)}.items():
        monkeypatch.setenv(name, value)
    caches = (load_balance_config.cache_clear, bootstrap.balance_event_service.cache_clear, bootstrap.reset_container)
    for clear in caches:
        clear()
    stream_arn = env.client("dynamodb").describe_table(TableName=env.stack.resources.tables["Credits"])["Table"]["LatestStreamArn"]
    yield StreamPoller(env.client("dynamodbstreams"), stream_arn, balance_stream.handler)
    for clear in caches:
        clear()


def test_the_smoke_test_leaves_the_products_consumers_nothing_to_see(env, balance_events_function):
    # Given a product rule on the pipeline's events, a capture of every balance event, and a smoke float so small
    # that the smoke charge crosses the low threshold (10): only the balance-events guard keeps it unpublished
    product_queue = product_rule(env)
    balance_queue = capture_published_events(env.client("events"), env.client("sqs"), "credits.reconciler")
    Adjuster(env.store()).adjust(SMOKE_USER, 10, "smoke test float", "smoke-float-test", "test")
    # When the smoke test runs against the local stack
    done = smoke_test(env)
    assert done.returncode == 0, done.stderr
    # And, as controls, a real render is published and another user is charged across the same threshold
    env.stack.publish(
        [
            {
                "source": "video.generation",
                "detail-type": "video.rendered",
                "detail": {"jobId": "j-ctl", "userId": "u-ctl", "seconds": 1, "model": "test"},
            }
        ]
    )
    Adjuster(env.store()).adjust("u-ctl", 10, "opening", "ctl-open", "test")
    Adjuster(env.store()).adjust("u-ctl", -1, "charge", "ctl-charge", "test")
    balance_events_function.drain()
    # Then the product's rule saw only the real render
    received = read_captured(env.client("sqs"), product_queue)
    assert [(e["source"], e["detail"]["userId"]) for e in received] == [("video.generation", "u-ctl")]
    # And the balance events hold the control user's crossing and nothing of the smoke user, published or recorded
    published = read_captured(env.client("sqs"), balance_queue)
    assert [(e["detail-type"], e["detail"]["userId"]) for e in published] == [("credits.low", "u-ctl")]
    assert BalanceEventLog(env.client("dynamodb"), env.stack.resources.tables["BalanceEvents"]).recent(SMOKE_USER, 50) == []
    # While the smoke charge did cross it: 10 -> 9
    assert json.loads(done.stdout.split("smoke test passed: ", 1)[1])["balanceAfter"] == 9


def test_a_smoke_test_without_a_float_refuses_before_publishing(env, monkeypatch):
    # Given a deployed-stage run (no local funding) whose smoke user has no balance
    script = _load_script()
    published = []

    class Events:
        def put_events(self, **request):
            published.append(request)

    # When it runs, Then it refuses with the command that funds the float, and puts nothing
    with pytest.raises(script.SmokeFailure, match="fund its float once: reconciler --stage prod adjust smoke-test-user"):
        script.run(env.store(), Events(), "prod", timeout=1)
    assert published == []


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("smoke_test_script", REPO / "scripts" / "smoke-test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_test_runs_from_a_python_without_the_dependencies(tmp_path):
    # A Python that cannot import boto3 (-S: no site-packages) re-runs the script with the checkout's .venv
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    script = str(REPO / "scripts" / "smoke-test.py")
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([str(base_python), "-S", script, "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=clean_env)
    assert done.returncode == 0, done.stderr
    assert "--env" in done.stdout
    # Without a .venv to fall back on, it says what to do in one line
    stuck = subprocess.run(
        [str(base_python), "-S", script, "--env", "local"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**clean_env, "SMOKE_TEST_REEXEC": "1"},
    )
    assert stuck.returncode == 2
    assert stuck.stderr.startswith("SMOKE TEST NOT RUN:") and "make bootstrap" in stuck.stderr


def test_the_smoke_role_allows_every_call_the_smoke_test_makes_and_grants_nothing_it_does_not(env, monkeypatch, tmp_path):
    # Given the dev stage's smoke role as synthesized, and clients that record what the smoke test asks of AWS
    from infra.app import build_ci_app
    from reconciler.config import RuntimeConfig
    from reconciler.repository.dynamodb_operations import OperationsStore
    from tests.infra.ci_roles import ci_roles

    (stack,) = build_ci_app("dev", outdir=str(tmp_path / "ci")).synth().stacks
    smoke = ci_roles(stack.template, DEV_ACCOUNT, REGION)["cc-reconciler-ci-smoke"]
    calls: list[tuple[str, str, dict]] = []

    def recording(service: str):
        client = env.client(service)
        client.meta.events.register("provide-client-params.*.*", lambda params, model, **_: calls.append((service, model.name, params)))
        return client

    for name, value in env.stack.environment().items():  # the function runs in-process, as the local invoker does
        monkeypatch.setenv(name, value)
    bootstrap.reset_container()
    Adjuster(env.store()).adjust(SMOKE_USER, 50, "smoke test float", "smoke-float-test", "test")
    # When the smoke test runs with them against the local stack
    store = OperationsStore(recording("dynamodb"), RuntimeConfig.for_stage("dev"))
    _load_script().run(store, recording("events"), "dev", timeout=30, drain=env.stack.invoker().drain, log=lambda message: None)
    bootstrap.reset_container()
    # Then the smoke role allows every one of its calls, as IAM evaluates the role's conditions
    requests = [iam_request(*call) for call in calls]
    assert {action for action, _, _ in requests} == {"dynamodb:GetItem", "dynamodb:Query", "events:PutEvents"}
    for action, resource, context in requests:
        assert smoke.allowed(action, resource, context), f"the smoke role refuses {action} on {resource} with {context}"
    # And each of its statements serves one of them: it grants nothing the smoke test does not do
    unused = [s["Sid"] for s in smoke.allows if not any(smoke.grants(s, *request) for request in requests)]
    assert unused == []


DEV_ACCOUNT, REGION = "111111111111", "us-east-1"


def iam_request(service: str, operation: str, params: dict) -> tuple[str, str, dict[str, list[str]]]:
    """The IAM action, resource (dev's ARNs) and condition keys of one API call of the smoke test."""
    if service == "events":
        (entry,) = params["Entries"]
        bus = f"arn:aws:events:{REGION}:{DEV_ACCOUNT}:event-bus/{entry.get('EventBusName', 'default')}"
        return f"events:{operation}", bus, {"events:source": [entry["Source"]], "events:detail-type": [entry["DetailType"]]}
    table = f"arn:aws:dynamodb:{REGION}:{DEV_ACCOUNT}:table/{params['TableName']}"
    if operation == "GetItem":
        key = next(iter(params["Key"].values()))["S"]  # Jobs and Credits have a partition key only
    else:  # Query: the partition key's value in the key condition (`name = :placeholder AND ...`)
        placeholder = re.match(r"\s*#?\w+\s*=\s*(:\w+)", params["KeyConditionExpression"])
        assert placeholder, params["KeyConditionExpression"]
        key = params["ExpressionAttributeValues"][placeholder[1]]["S"]
    return f"dynamodb:{operation}", table, {"dynamodb:LeadingKeys": [key]}

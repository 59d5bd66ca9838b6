"""The composition root's AWS clients: one boto3 Session per container (issue #12, cold start and memory)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from reconciler import bootstrap


@pytest.fixture
def sessions_made(monkeypatch) -> list[Any]:
    """Every boto3 Session built from here on, in order."""
    made: list[Any] = []

    class CountedSession(boto3.session.Session):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(boto3.session, "Session", CountedSession)
    return made


def _credentials(client: Any) -> Any:
    # botocore hands every client of one botocore session the same Credentials object, loaded once.
    return client._request_signer._credentials


def test_clients_without_a_session_share_the_containers_one_session(sessions_made):
    dynamodb = bootstrap.aws_client("dynamodb")
    sqs = bootstrap.aws_client("sqs")
    sns = bootstrap.alert_sns_client()

    assert len(sessions_made) == 1
    assert _credentials(dynamodb) is _credentials(sqs) is _credentials(sns)


def test_a_new_container_gets_a_new_session(sessions_made):
    before = bootstrap.aws_client("dynamodb")
    bootstrap.reset_container()
    after = bootstrap.aws_client("dynamodb")

    assert len(sessions_made) == 2
    assert sessions_made[0]._session is not sessions_made[1]._session
    assert _credentials(before) is not _credentials(after)


def test_a_given_session_is_used_and_the_default_one_is_not_made(sessions_made):
    mine = boto3.session.Session(region_name="eu-west-1")
    client = bootstrap.aws_client("dynamodb", session=mine)

    assert sessions_made == [mine]
    assert client.meta.region_name == "eu-west-1"


def test_region_and_endpoint_are_read_from_the_environment_for_each_client(monkeypatch):
    """What the local stack relies on: it sets AWS_ENDPOINT_URL and the region, and clients made afterwards use them."""
    first = bootstrap.aws_client("dynamodb")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    second = bootstrap.aws_client("dynamodb")

    assert first.meta.region_name == "us-east-1" and "amazonaws.com" in first.meta.endpoint_url
    assert (second.meta.region_name, second.meta.endpoint_url) == ("eu-west-1", "http://127.0.0.1:9")


def test_changed_credentials_apply_from_the_next_container(monkeypatch):
    """The Session resolves credentials once, as a Lambda container does; reset_container() picks up new ones."""
    assert _credentials(bootstrap.aws_client("sqs")).access_key == "testing"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")
    assert _credentials(bootstrap.aws_client("sqs")).access_key == "testing"

    bootstrap.reset_container()
    assert _credentials(bootstrap.aws_client("sqs")).access_key == "rotated"


def test_clients_of_the_shared_session_are_made_one_at_a_time(monkeypatch):
    """A triage note makes its client on its own thread; a boto3 Session is not safe to use from two at once."""
    session = bootstrap.default_session()
    real_client = session.client
    inside = 0
    most_inside = 0
    both_started = threading.Barrier(2)

    def slow_client(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        threading.Event().wait(0.05)  # long enough for the other thread to come in, were it let in
        inside -= 1
        return real_client(*args, **kwargs)

    monkeypatch.setattr(session, "client", slow_client)

    def make(service: str) -> None:
        both_started.wait()
        bootstrap.aws_client(service)

    threads = [threading.Thread(target=make, args=(service,)) for service in ("secretsmanager", "sns")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most_inside == 1

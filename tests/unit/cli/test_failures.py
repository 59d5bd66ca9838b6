"""One line per error an operator can act on, chosen from botocore's classes and AWS's error codes."""

from __future__ import annotations

import pytest
from botocore import exceptions as boto

from reconciler.cli.failures import Where, one_line
from reconciler.service.ports import Contention

PROD = Where("prod", profile="oncall")
LOCAL = Where("dev", endpoint_url="http://127.0.0.1:4566")


def client_error(code: str, status: int = 400, message: str = "m", operation: str = "GetItem") -> boto.ClientError:
    return boto.ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize(
    ("error", "where", "fragment"),
    [
        (client_error("ExpiredTokenException"), PROD, "aws sso login --profile oncall"),
        (client_error("AccessDeniedException", operation="PurgeQueue"), PROD, "access denied to PurgeQueue"),
        (client_error("ThrottlingException"), PROD, "throttled"),
        (client_error("ResourceNotFoundException", message="Requested resource not found"), PROD, "is stage prod deployed"),
        (client_error("500", 500, "<!doctype html>\n<h1>Internal Server Error</h1>", "DescribeAlarmHistory"), LOCAL, "may not implement it"),
        (client_error("InternalFailure", 500), PROD, "retry in a minute"),
        (boto.UnauthorizedSSOTokenError(), PROD, "aws sso login --profile oncall"),
        (boto.TokenRetrievalError(provider="sso", error_msg="expired"), PROD, "aws sso login"),
        (boto.NoRegionError(), PROD, "--region"),
        (boto.EndpointConnectionError(endpoint_url="https://dynamodb.mars-1.amazonaws.com/"), PROD, "check your network, proxy"),
        (boto.ReadTimeoutError(endpoint_url="https://x"), PROD, "may or may not have been applied"),
    ],
)
def test_each_error_is_one_line_saying_what_to_do(error, where, fragment):
    message = one_line(error, where)
    assert message is not None and "\n" not in message and fragment in message


def test_the_aws_cause_wins_over_the_wrapper_that_retried_it():
    def retry_that_gives_up():
        try:
            raise boto.EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
        except boto.EndpointConnectionError as cause:
            raise Contention("busy") from cause

    with pytest.raises(Contention) as wrapped:
        retry_that_gives_up()
    assert "cannot reach http://127.0.0.1:9/" in one_line(wrapped.value, LOCAL)


def test_a_bug_keeps_its_traceback():
    assert one_line(KeyError("x"), PROD) is None

"""Every error an operator can act on, as one line saying what to do next.

Mapped from botocore's exception classes and AWS error codes (structured fields), never from message
text. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore import exceptions as boto

from reconciler.contract import ConfigError
from reconciler.ops.operator_error import FAILED, NOT_FOUND, USAGE, OpsError
from reconciler.service.ports import AmbiguousWrite, Contention, RetriesExhausted

_MISSING_RESOURCE_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFound",
}
_EXPIRED_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
_THROTTLED_CODES = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "ProvisionedThroughputExceededException", "TooManyRequestsException"}


@dataclass(frozen=True)
class Where:
    """What the command was pointed at, so a message can say what to change."""

    stage: str
    endpoint_url: str | None = None
    profile: str | None = None
    local: bool = False

    @property
    def on_this_machine(self) -> bool:
        """The local stack (--local), or an endpoint on this machine: only then may an emulator be blamed."""
        if self.local:
            return True
        host = urlsplit(self.endpoint_url or "").hostname or ""
        return host in ("localhost", "::1") or host.startswith("127.")


def _profile_hint(where: Where) -> str:
    return f" --profile {where.profile}" if where.profile else ""


def one_line(error: BaseException, where: Where) -> str | None:
    """The message for an error an operator can act on; None for a bug."""
    explained = explain(error, where)
    return None if explained is None else explained[0]


def explain(error: BaseException, where: Where) -> tuple[str, int] | None:
    """The message and the exit code (ops/operator_error.py's table) for an error an operator can act on; None for a bug."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):  # wrapped errors: what caused them
        chain.append(current)
        current = current.__cause__ or current.__context__
    # AWS's own exception says most precisely what to do (an unreachable endpoint wrapped as "busy" is not busy).
    ordered = [e for e in chain if isinstance(e, (boto.BotoCoreError, boto.ClientError))] + chain
    for candidate in ordered:
        message = _message(candidate, where)
        if message is not None:
            return message, _exit_code(candidate)
    return None


def _exit_code(error: BaseException) -> int:
    if isinstance(error, OpsError):
        return error.exit_code
    if isinstance(error, (ConfigError, boto.ParamValidationError)) or (isinstance(error, ValueError) and hasattr(error, "field")):
        return USAGE
    if isinstance(error, boto.ClientError) and error.response.get("Error", {}).get("Code") in _MISSING_RESOURCE_CODES:
        return NOT_FOUND
    return FAILED


def _message(error: BaseException, where: Where) -> str | None:
    if isinstance(error, (OpsError, ConfigError)):
        return str(error)
    if isinstance(error, ValueError) and hasattr(error, "field") and hasattr(error, "reason"):  # domain InvalidEvent
        return f"invalid {error.field}: {error.reason}"
    if isinstance(error, boto.ProfileNotFound):
        return (
            f"AWS profile {error.kwargs.get('profile')!r} is not in your AWS config: check --profile / AWS_PROFILE "
            "(`aws configure list-profiles` lists them)"
        )
    if isinstance(error, (boto.SSOTokenLoadError, boto.UnauthorizedSSOTokenError, boto.TokenRetrievalError, boto.SSOError)):
        return f"your AWS SSO session is missing or expired: run `aws sso login{_profile_hint(where)}`, then retry"
    return _configuration_message(error, where)


def _configuration_message(error: BaseException, where: Where) -> str | None:
    """The AWS configuration on this machine: files, profiles, credentials, region, endpoint."""
    if isinstance(error, boto.ConfigParseError):
        return f"your AWS config file {error.kwargs.get('path')} cannot be parsed: fix its syntax (or point AWS_CONFIG_FILE at another)"
    if isinstance(error, boto.InvalidConfigError):
        return f"your AWS config is invalid: {error.kwargs.get('error_msg', error)}"
    if isinstance(error, boto.CredentialRetrievalError):
        source = "credential_process" if error.kwargs.get("provider") == "custom-process" else f"credential source {error.kwargs.get('provider')}"
        detail = str(error.kwargs.get("error_msg") or "").strip()
        return f"your AWS profile's {source} failed{': ' + detail if detail else ''}; run it yourself to see why (these are not missing credentials)"
    if isinstance(error, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        if where.endpoint_url:
            return (
                f"no AWS credentials for {where.endpoint_url}: a local endpoint still needs some (any values), e.g. "
                "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local, or use --local for the stack of `python -m emulator up`"
            )
        return (
            "no AWS credentials found: pass --profile NAME or set AWS_PROFILE (`aws sso login` first for SSO), "
            "or use --local for the stack of `python -m emulator up`"
        )
    if isinstance(error, boto.NoRegionError):
        return "no AWS region configured: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or set region in your profile"
    if isinstance(error, boto.InvalidRegionError):
        return f"invalid AWS region {error.kwargs.get('region_name')!r}: pass a region such as --region us-east-1"
    if isinstance(error, (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ProxyConnectionError)):
        url = getattr(error, "kwargs", {}).get("endpoint_url") or where.endpoint_url or "AWS"
        if where.endpoint_url and not where.on_this_machine:
            return f"cannot reach {url}: check --endpoint-url, your network and proxy (HTTPS_PROXY)"
        if where.on_this_machine:
            return (
                f"cannot reach {url}: is the local stack running? start it with `python -m emulator --stage {where.stage} up` "
                "(or check --endpoint-url)"
            )
        return f"cannot reach {url}: check your network, proxy (HTTPS_PROXY) and --region"
    return _network_message(error, where)


def _network_message(error: BaseException, where: Where) -> str | None:
    if isinstance(error, (boto.ReadTimeoutError, boto.ConnectionClosedError)):
        return "AWS did not answer in time (the request may or may not have been applied): check with a read command, then retry"
    if isinstance(error, boto.ParamValidationError):
        return f"AWS would refuse this request: {error.kwargs.get('report', error)}".replace("\n", " ")
    if isinstance(error, boto.ClientError):
        return _client_error(error, where)
    if isinstance(error, (RetriesExhausted, Contention)):
        return "DynamoDB stayed busy (throttling or conflicts) through every retry: nothing was left half-written; retry in a minute"
    if isinstance(error, AmbiguousWrite):
        return "the write's answer was lost, so it may or may not have been applied: check with a read command (re-running is safe)"
    return None


def _client_error(error: boto.ClientError, where: Where) -> str:
    details = error.response.get("Error", {})
    code, message = details.get("Code", ""), details.get("Message", "")
    operation = getattr(error, "operation_name", "")
    if code in _MISSING_RESOURCE_CODES:
        return f"missing resource: {message or code} (is stage {where.stage} deployed there, and is --stage right?)"
    if code in _EXPIRED_CODES:
        return (
            f"AWS refused the credentials ({code}): they are expired or wrong; refresh them (`aws sso login{_profile_hint(where)}` for SSO) and retry"
        )
    if code in _DENIED_CODES:
        return f"access denied to {operation or 'this call'}: your role lacks the permission ({message or code}); use the operator role"
    if code in _THROTTLED_CODES:
        return f"AWS throttled {operation or 'the call'} ({code}): retry in a minute"
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if status >= 500:
        if where.on_this_machine:
            return (
                f"the local emulator at {where.endpoint_url or 'the local endpoint'} failed {operation or 'the call'} (HTTP {status}); "
                "it (moto) may not implement it: run it against a deployed stage"
            )
        if where.endpoint_url:
            return f"{where.endpoint_url} failed {operation or 'the call'} (HTTP {status}, after retries): retry in a minute, or check --endpoint-url"
        return f"AWS failed {operation or 'the call'} (HTTP {status}, after retries): retry in a minute"
    text = " ".join(str(message).split())
    return f"AWS refused {operation or 'the call'}: {code}: {text[:300]}"

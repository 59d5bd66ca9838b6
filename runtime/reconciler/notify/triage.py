"""Optional triage note from an OpenAI-compatible Chat Completions endpoint, bounded in time and size.

Imported only when triage is enabled and an alert is about to be published. Standard library HTTP
(urllib.request) rather than the `openai` SDK: nothing to package, nothing to import on cold start.

Never raises: any failure (secret, network, timeout, HTTP status, unexpected answer) returns None and
is reported as a short reason; the caller counts it (TriageFailures) and sends the alert without a note.
The API key is never logged, never put in a message, and scrubbed from the answer should a model echo it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from reconciler.notify.alerts import Alert

DEFAULT_BASE_URL = "https://api.openai.com"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_MAX_CHARS = 1500
DEFAULT_SECRET_MAX_AGE = 300  # seconds a fetched key is reused (Powertools parameters cache)
MAX_RESPONSE_BYTES = 64 * 1024
SECRET_KEYS = ("api_key", "OPENAI_API_KEY", "apiKey", "openai_api_key", "key")

SYSTEM_PROMPT = (
    "You help an on-call engineer triage an alert from a credit reconciler (video renders are charged in "
    "credits). Using ONLY the facts given, say in at most 5 short lines: the likely cause, the risk to users' "
    "money, and which of the listed commands to run first and why. Never invent commands, ids or amounts; "
    "never suggest moving credits without first inspecting the ledger."
)


class TriageError(Exception):
    """A short, secret-free reason why there is no note."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_secret(value: Any) -> str:
    """The key from a secret that is either the key itself or JSON with a key field."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise TriageError("the secret is empty")
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise TriageError("the secret looks like JSON but does not parse") from None
        for name in SECRET_KEYS:
            if isinstance(data, dict) and isinstance(data.get(name), str) and data[name].strip():
                return data[name].strip()
        raise TriageError("the secret JSON has none of the fields " + ", ".join(SECRET_KEYS))
    return text


@dataclass
class Triage:
    secret_name: str
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_chars: int = DEFAULT_MAX_CHARS
    secret_max_age: int = DEFAULT_SECRET_MAX_AGE
    provider_factory: Callable[[], Any] | None = None  # reconciler.bootstrap wires the real one
    _provider: Any = field(default=None, init=False, repr=False)

    # --- secret -----------------------------------------------------------------------------------
    def _api_key(self) -> str:
        if self._provider is None:
            if self.provider_factory is None:
                raise TriageError("no secrets provider: build triage with reconciler.bootstrap.build_notifier")
            self._provider = self.provider_factory()
        try:
            # Powertools caches the value for secret_max_age seconds: one GetSecretValue per period.
            value = self._provider.get(self.secret_name, max_age=self.secret_max_age)
        except Exception as error:  # botocore ClientError, GetParameterError, connection errors
            raise TriageError(f"the API key secret is unavailable ({_error_code(error)})") from None
        return parse_secret(value)

    # --- request ----------------------------------------------------------------------------------
    def prompt(self, alert: Alert) -> str:
        facts = {
            "kind": alert.kind,
            "severity": alert.severity,
            "title": alert.title,
            "whatHappened": alert.what_happened,
            "reconcilerDid": alert.reconciler_did,
            "creditsInvolved": alert.credits_involved,
            "moneyNote": alert.money_note,
            "facts": alert.document()["facts"],
            "commands": [command.text for command in alert.commands],
        }
        return _clip(json.dumps(facts, separators=(",", ":"), default=str), self.max_chars)

    def _request(self, alert: Alert, key: str, timeout: float) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "temperature": 0,
                "max_tokens": 300,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": self.prompt(alert)},
                ],
            }
        ).encode()
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/v1/chat/completions",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=max(timeout, 0.05)) as response:  # noqa: S310 (https or local)
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise TriageError(f"the model endpoint answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise TriageError(f"the model endpoint is unreachable ({type(error).__name__})") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise TriageError("the model's answer is too large")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TriageError("the model's answer is not a chat completion") from None
        if not isinstance(content, str) or not content.strip():
            raise TriageError("the model's answer is empty")
        note = content.strip()
        if key and key in note:
            note = note.replace(key, "[redacted]")
        return _clip(note, self.max_chars)

    # --- bounded call -----------------------------------------------------------------------------
    def note(self, alert: Alert, budget: float | None = None) -> tuple[str | None, str | None]:
        """(note, None) or (None, reason). Returns within min(timeout, budget) seconds plus thread start-up.

        The secret read and the HTTP call run in a daemon thread joined with the total deadline, so a slow
        Secrets Manager, a slow TLS handshake or a model that trickles bytes cannot hold the caller.
        """
        limit = self.timeout if budget is None else min(self.timeout, budget)
        if limit <= 0.1:
            return None, "no time left in the invocation for a note"
        deadline = time.monotonic() + limit
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                key = self._api_key()
                result["note"] = self._request(alert, key, deadline - time.monotonic())
            except TriageError as error:
                result["error"] = str(error)
            except Exception as error:  # never let a surprise escape the thread with a traceback
                result["error"] = f"unexpected {type(error).__name__}"

        worker = threading.Thread(target=work, name="triage-note", daemon=True)
        worker.start()
        worker.join(max(deadline - time.monotonic(), 0))
        if worker.is_alive():
            return None, f"no answer within {limit:.1f}s"
        if "note" in result:
            return result["note"], None
        return None, result.get("error", "no note")


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    cause = error.__cause__ or error.__context__
    if cause is not None and cause is not error:
        nested = getattr(cause, "response", None)
        if isinstance(nested, dict) and nested.get("Error", {}).get("Code"):
            return str(nested["Error"]["Code"])
    return type(error).__name__

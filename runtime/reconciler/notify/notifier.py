"""Publishes alerts to the ops topic: grouped, rate-limited, optionally with a triage note; never raises.

Not on the settlement path: the handlers call it after the outcome is committed and recorded, and every
failure here (SNS, the model, the key) is logged without secrets and counted (AlertFailures,
TriageFailures), never raised. Importing this module loads no HTTP client, no Powertools parameters and
no triage code; the SNS client is created on the first publish, the triage client on the first note.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from reconciler.contract import Metric
from reconciler.notify import alerts as build
from reconciler.notify.alerts import Alert
from reconciler.notify.grouping import GroupingWindow
from reconciler.observability import COUNT, logger, metrics

# Leave the invocation this much time after the note, for the publish itself and the metrics flush.
PUBLISH_RESERVE_SECONDS = 2.0


class Notifier:
    def __init__(
        self,
        stage: str,
        topic_arn: str,
        *,
        sns: Any = None,
        sns_factory: Callable[[], Any] | None = None,  # reconciler.bootstrap wires the real one
        grouping: GroupingWindow | None = None,
        triage: Any = None,
        triage_factory: Callable[[], Any] | None = None,
        prices: Any = None,
    ) -> None:
        self.stage = stage
        self.topic_arn = topic_arn
        self.grouping = grouping or GroupingWindow()
        self.prices = prices
        self._sns = sns
        self._sns_factory = sns_factory
        self._triage = triage
        self._triage_factory = triage_factory

    # --- entry points (each never raises) ------------------------------------------------------------
    def notify_outcome(self, outcome: Any, raw_event: Any = None, deadline: float | None = None) -> list[str]:
        """Alerts for an event's outcome that needs a person (invalid, conflict); nothing for the others."""
        return self._guarded(lambda: build.from_outcome(outcome, self.stage, raw_event, self.prices), deadline)

    def notify_scan(self, report: Any, deadline: float | None = None) -> list[str]:
        """Alerts for a timer scan's stuck and unsettleable jobs; also sends summaries that are due."""
        return self._guarded(lambda: build.from_scan_report(report, self.stage), deadline)

    def notify(self, alert: Alert, deadline: float | None = None) -> list[str]:
        return self._guarded(lambda: alert, deadline)

    def flush(self, force: bool = False) -> list[str]:
        """Sends the held-back counts that are due (all of them with force=True, for a process about to exit)."""
        try:
            return [mid for mid in (self._publish(summary) for summary in self.grouping.due(force=force)) if mid]
        except Exception as error:  # noqa: BLE001 - an alert that cannot be sent is counted, never raised
            self._failed("alert flush failed", error)
            return []

    # --- internals ------------------------------------------------------------------------------------
    def _guarded(self, make: Callable[[], Alert | list[Alert] | None], deadline: float | None) -> list[str]:
        sent: list[str] = []
        try:
            made = make()
            for alert in made if isinstance(made, list) else [made] if made is not None else []:
                admitted = self.grouping.admit(alert)
                if admitted is None:
                    metrics.add_metric(Metric.ALERTS_GROUPED, COUNT, alert.count)
                    continue
                message_id = self._publish(self._with_note(admitted, deadline))
                if message_id:
                    sent.append(message_id)
            sent += self.flush()
        except Exception as error:  # noqa: BLE001 - an alert that cannot be sent is counted, never raised
            self._failed("building or sending an ops alert failed", error)
        return sent

    def _with_note(self, alert: Alert, deadline: float | None) -> Alert:
        triage = self._get_triage()
        if triage is None:
            return alert
        budget = None if deadline is None else deadline - time.monotonic() - PUBLISH_RESERVE_SECONDS
        try:
            note, reason = triage.note(alert, budget)
        except Exception as error:  # noqa: BLE001 - a Triage never raises; a substitute might
            note, reason = None, f"unexpected {type(error).__name__}"
        if note is None:
            metrics.add_metric(Metric.TRIAGE_FAILURES, COUNT, 1)
            logger.warning("ops alert sent without a triage note", extra={"alert_kind": alert.kind, "triage_reason": reason})
            return alert
        return alert.with_note(note)

    def _get_triage(self) -> Any:
        if self._triage is None and self._triage_factory is not None:
            try:
                self._triage = self._triage_factory()
            except Exception as error:  # noqa: BLE001 - no triage is better than no alert
                self._triage_factory = None
                metrics.add_metric(Metric.TRIAGE_FAILURES, COUNT, 1)
                logger.warning("triage disabled for this container", extra={"error_type": type(error).__name__})
        return self._triage

    def _publish(self, alert: Alert) -> str | None:
        if not self.topic_arn:
            metrics.add_metric(Metric.ALERT_FAILURES, COUNT, 1)
            logger.warning("no ops topic configured; alert not sent", extra={"alert_kind": alert.kind, "alert_subject": alert.subject})
            return None
        try:
            if self._sns is None:
                if self._sns_factory is None:
                    raise RuntimeError("no SNS client: build the notifier with reconciler.bootstrap.build_notifier")
                self._sns = self._sns_factory()
            document = alert.document()
            response = self._sns.publish(
                TopicArn=self.topic_arn,
                Subject=alert.subject,
                # Email subscribers get the text; everything else (SQS, Lambda, HTTPS, chat bots) the JSON.
                MessageStructure="json",
                Message=json.dumps({"default": json.dumps(document), "email": alert.text}),
                MessageAttributes=alert.message_attributes(),
            )
        except Exception as error:  # noqa: BLE001 - an alert that cannot be sent is counted, never raised
            self._failed("ops alert could not be published", error, alert)
            return None
        metrics.add_metric(Metric.ALERTS_PUBLISHED, COUNT, 1)
        logger.info("ops alert published", extra={"alert_kind": alert.kind, "alert_group": alert.group_key, "alert_subject": alert.subject})
        return response.get("MessageId")

    @staticmethod
    def _failed(message: str, error: Exception, alert: Alert | None = None) -> None:
        metrics.add_metric(Metric.ALERT_FAILURES, COUNT, 1)
        code = getattr(error, "response", {}).get("Error", {}).get("Code") if isinstance(getattr(error, "response", None), dict) else None
        logger.warning(
            message,
            extra={
                "error_type": type(error).__name__,
                "error_code": code,
                **({"alert_kind": alert.kind, "alert_subject": alert.subject} if alert else {}),
            },
        )

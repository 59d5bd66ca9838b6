"""logs tail and metrics: the function's log group and the numbers the v1 runbook watched."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from reconciler.cli.app import CONTEXT_SETTINGS, app, state_of
from reconciler.cli.output import text_value
from reconciler.cli.times import window

logs_app = typer.Typer(no_args_is_help=True, context_settings=CONTEXT_SETTINGS, help="The function's logs (/aws/lambda/cc-agent-reconciler-{stage}).")
app.add_typer(logs_app, name="logs")


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@logs_app.command("tail")
def logs_tail(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="From: ISO 8601, 10m, 2h, yesterday, epoch milliseconds ...")] = "10m",
    until: Annotated[str | None, typer.Option(help="Up to (default now; not with --follow).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="Only errors (ERROR level, timeouts, tracebacks).")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --follow.", min=0.2)] = 2.0,
) -> None:
    """Print the function's log events (one a line: time, message), like `aws logs tail`."""
    state = state_of(ctx)
    telemetry = state.target.telemetry()
    group = telemetry.log_group
    start, end = window(since, until)
    if follow and end is not None:
        raise typer.BadParameter("--follow prints new events as they come: it takes no --until", param_hint="--until")
    seen: set[str] = set()
    events: list[dict] = []

    def emit(batch: list[dict]) -> None:
        for event in batch:
            if event["eventId"] in seen:
                continue
            seen.add(event["eventId"])
            events.append(event)
            if state.out.format != "json":
                typer.echo(f"{_when(event['timestamp'])}\t{text_value(event['message']) if state.out.format == 'text' else event['message']}")

    emit(list(telemetry.log_events(start, end, errors)))
    try:
        while follow:
            time.sleep(poll)
            newest = max((e["timestamp"] for e in events), default=int(start.timestamp() * 1000))
            emit(list(telemetry.log_events(datetime.fromtimestamp(newest / 1000, UTC), None, errors)))
    except KeyboardInterrupt:
        pass
    if state.out.format == "json" or state.out.query is not None:
        state.out.data([{**e, "time": _when(e["timestamp"])} for e in events])
    else:
        state.out.note(f"{len(events)} events from {group} since {start.isoformat()}" + (" (errors only)" if errors else ""))


@app.command()
def metrics(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="From: ISO 8601, 2h, 1d, yesterday ...")] = "1d",
    until: Annotated[str | None, typer.Option(help="Up to (default now).")] = None,
    period: Annotated[int, typer.Option(help="Minutes per data point.", min=1)] = 60,
) -> None:
    """The runbook's numbers: Adjustments (the rate alarm's metric), the function's Errors, Invocations, Throttles, InvalidEvents."""
    state = state_of(ctx)
    start, until_moment = window(since, until)
    # A minute past now: the current period's data points are included (CloudWatch takes an end in the future).
    end = until_moment or datetime.now(UTC) + timedelta(minutes=1)
    result, rows = [], []
    for query, points in state.target.telemetry().runbook_series(start, end, timedelta(minutes=period)):
        total = sum(point["value"] or 0 for point in points)
        result.append({"metric": query.label, "namespace": query.namespace, "name": query.name, "total": total, "datapoints": points})
        peak = max(points, key=lambda p: p["value"] or 0) if points else None
        rows.append(
            [query.label, f"{query.namespace}/{query.name}", f"{total:g}", f"{peak['value']:g} at {peak['timestamp']}" if peak else "no data"]
        )
    state.out.data(result)
    state.out.table(
        f"Metrics ({state.stage}), {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, {period} min periods",
        ["metric", "source", "sum", "peak period"],
        rows,
    )

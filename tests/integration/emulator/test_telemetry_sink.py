"""The local stack does with the handler's output what CloudWatch does with a Lambda's: logs and EMF metrics."""

import json

from emulator.resources import LocalResources, _alarm_request
from emulator.telemetry_sink import CloudWatchSink, emf_metric_data, lambda_metrics


def emf(**values) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 1795955115540,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Reconciler",
                        "Dimensions": [["service", "stage"], []],
                        "Metrics": [{"Name": "Settlements", "Unit": "Count"}, {"Name": "Adjustments", "Unit": "Count"}],
                    }
                ],
            },
            "service": "credit-reconciler",
            "stage": "dev",
            **values,
        }
    )


def test_an_emf_line_becomes_one_datum_per_metric_value_and_dimension_set():
    namespace, data = emf_metric_data(emf(Settlements=[1.0], Adjustments=[2.0, 1.0]))
    assert namespace == "Reconciler"
    keyed = sorted((d["MetricName"], len(d["Dimensions"]), d["Value"]) for d in data)
    assert keyed == [
        ("Adjustments", 0, 1.0),
        ("Adjustments", 0, 2.0),
        ("Adjustments", 2, 1.0),
        ("Adjustments", 2, 2.0),
        ("Settlements", 0, 1.0),
        ("Settlements", 2, 1.0),
    ]
    assert emf_metric_data('{"level":"INFO","message":"settled"}') is None
    assert emf_metric_data("Task timed out") is None


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda **kwargs: self.calls.append((name, kwargs))


def test_the_sink_ships_every_line_to_the_log_group_and_metrics_to_cloudwatch():
    logs, cloudwatch = Recorder(), Recorder()
    sink = CloudWatchSink(logs, cloudwatch, "/aws/lambda/cc-agent-reconciler-dev")
    sink.ship('{"level":"INFO"}\n\n' + emf(Settlements=[1.0], Adjustments=[0.0]) + "\n")
    sink.ship('{"level":"ERROR"}\n')
    assert [name for name, _ in logs.calls] == ["create_log_stream", "put_log_events", "put_log_events"]
    assert len(logs.calls[1][1]["logEvents"]) == 2
    assert [name for name, _ in cloudwatch.calls] == ["put_metric_data"]
    assert [d["MetricName"] for d in lambda_metrics("f", 3, 0)] == ["Invocations"]


def test_alarms_from_the_template_resolve_their_references_locally():
    local = LocalResources(stage="dev", tables={"Jobs": "Jobs-dev"}, topics={"ops-alerts-dev": "arn:topic"}, function_name="cc-agent-reconciler-dev")
    props = {
        "AlarmName": "cc-reconciler-errors-dev",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "MetricName": "Errors",
        "Namespace": "AWS/Lambda",
        "Period": 300,
        "Statistic": "Sum",
        "Threshold": 1,
        "AlarmActions": [{"Fn::ImportValue": "cc-reconciler-data-dev:ExportsOutputRefOpsTopic69AD4B39FC864C0F"}],
        "Dimensions": [{"Name": "FunctionName", "Value": {"Fn::ImportValue": "x:ExportsOutputRefReconcilerFunction0432B6FF"}}],
    }
    request = _alarm_request(props, local)
    assert request["Dimensions"] == [{"Name": "FunctionName", "Value": "cc-agent-reconciler-dev"}]
    assert request["AlarmActions"] == ["arn:topic"] and request["Threshold"] == 1.0
    unknown = {**props, "Dimensions": [{"Name": "X", "Value": {"Fn::ImportValue": "something-else"}}]}
    assert _alarm_request(unknown, local) is None

"""The cold-start cost of each way to trace the functions (docs/tracing.md), against `import boto3`.

    python -m benchmarks.tracing_options PYTHON [REPETITIONS]

PYTHON is an interpreter whose environment holds boto3, aws-lambda-powertools with aws-xray-sdk, and the
OpenTelemetry packages the ADOT Python layer brings (opentelemetry-sdk, -exporter-otlp-proto-http,
-instrumentation-botocore, -propagator-aws-xray, -sdk-extension-aws): none of them is a dependency of the project,
so this runs in a throwaway environment (docs/tracing.md gives the commands). Each option's setup runs in a fresh
interpreter, every option once per repetition (interleaved); each time is divided by the `import boto3` of the same
repetition; the median ratio and its range are printed. Nothing is sent anywhere: the exporters point at 127.0.0.1
and no span is ended.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

TIMED = "import time; t = time.perf_counter_ns(); {setup}; print(time.perf_counter_ns() - t)"
OPTIONS = {
    "import boto3": "import boto3",
    # Lambda's active tracing alone: Lambda records the invocation; the function imports nothing for it.
    "Lambda active tracing, no SDK": "import boto3",
    # What the tracing stages ran until now: Powertools' Tracer, enabled, patching botocore through the X-Ray SDK.
    "Powertools Tracer (X-Ray SDK)": "import boto3; from aws_lambda_powertools import Tracer; Tracer(service='credit-reconciler')",
    # The in-process half of the ADOT layer: an OpenTelemetry SDK with X-Ray ids and propagation, an OTLP exporter and
    # botocore instrumented (the layer's collector extension starts beside it and is not counted).
    "OpenTelemetry SDK + botocore instrumentation (ADOT, in-process part)": (
        "import boto3; "
        "from opentelemetry import trace; "
        "from opentelemetry.sdk.trace import TracerProvider; "
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor; "
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter; "
        "from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator; "
        "from opentelemetry.propagators.aws import AwsXRayPropagator; "
        "from opentelemetry.instrumentation.botocore import BotocoreInstrumentor; "
        "provider = TracerProvider(id_generator=AwsXRayIdGenerator()); "
        "provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint='http://127.0.0.1:4318/v1/traces'))); "
        "trace.set_tracer_provider(provider); BotocoreInstrumentor().instrument()"
    ),
}
# In Lambda, with a trace header, as a tracing stage runs; the daemon address is local and nothing listens there.
ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def measure(python: str, repetitions: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, **ENV}
    times: dict[str, list[int]] = {name: [] for name in OPTIONS}
    for _ in range(repetitions):
        for name, setup in OPTIONS.items():
            out = subprocess.run([python, "-c", TIMED.format(setup=setup)], env=env, capture_output=True, text=True, check=True)
            times[name].append(int(out.stdout.split()[-1]))
    result = {}
    for name, values in times.items():
        ratios = sorted(mine / base for mine, base in zip(values, times["import boto3"], strict=True))
        result[name] = {"median_ms": statistics.median(values) / 1e6, "ratio": statistics.median(ratios), "low": ratios[0], "high": ratios[-1]}
    return result


if __name__ == "__main__":
    repetitions = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    for option, row in measure(sys.argv[1], repetitions).items():
        print(f"{option}: {row['median_ms']:.0f} ms, {row['ratio']:.2f}x import boto3 ({row['low']:.2f}-{row['high']:.2f})")

"""The operator's CLI start-up: the wall time of `reconciler --help` beside `aws --version` (the aws CLI of the venv),
each a fresh process, median of N runs; and whether `--help` loaded boto3 (it must not: the commands load it when
they reach AWS)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

HELP_LOADS = (
    "import sys\nfrom reconciler.cli.main import app\n"
    "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
    "print('boto3' in sys.modules, 'botocore' in sys.modules, file=sys.stderr)\n"
)


def _tool(name: str) -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.path.exists(beside) else shutil.which(name)


def _median_wall_ms(command: list[str], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, cwd="/", timeout=120)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def help_loads() -> dict[str, bool]:
    """What `reconciler --help` imported: boto3, botocore."""
    done = subprocess.run([sys.executable, "-c", HELP_LOADS], capture_output=True, text=True, cwd="/", timeout=120, check=True)
    boto3, botocore = done.stderr.strip().splitlines()[-1].split()
    return {"boto3": boto3 == "True", "botocore": botocore == "True"}


def cli_startup(repetitions: int = 9) -> dict:
    reconciler, aws = _tool("reconciler"), _tool("aws")
    result: dict = {"repetitions": repetitions, "loads": help_loads(), "load_average": os.getloadavg()[0]}
    result["reconciler_help_ms"] = _median_wall_ms([reconciler, "--help"], repetitions) if reconciler else None
    result["aws_version_ms"] = _median_wall_ms([aws, "--version"], repetitions) if aws else None
    return result


def render_cli_startup(r: dict, w) -> None:
    c = r.get("cli_startup")
    if not c:
        return
    w("## 9. The CLI's start-up")
    w("")
    w(
        f"Wall time of a fresh process from `/`, median of {c['repetitions']} runs (benchmarks/cli_startup.py; the machine's "
        f"1-minute load average {c.get('load_average', 0):.1f} when measured: compare the two, not the absolute figures): "
        f"`reconciler --help` {c['reconciler_help_ms']:.0f} ms, `aws --version` (the aws CLI of the venv) {c['aws_version_ms']:.0f} ms. "
        f"`--help` imports boto3: {'yes' if c['loads']['boto3'] else 'no'} (the commands import it when they reach AWS); "
        f"botocore: {'yes' if c['loads']['botocore'] else 'no'} (its exception classes, for the one-line errors)."
    )
    w("")


if __name__ == "__main__":
    import json

    print(json.dumps(cli_startup(int(sys.argv[1]) if len(sys.argv) > 1 else 9), indent=1))

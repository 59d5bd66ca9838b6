"""The function's code asset: the runtime package, without the operator tooling that ships beside it."""

from infra.app import build_app


def test_the_asset_holds_the_handlers_and_not_the_cli_ops_or_local_stack(tmp_path):
    # Given the dev app synthesized into a cloud assembly
    build_app("dev", outdir=str(tmp_path)).synth()
    # When we find the asset folder that carries the Lambda entry module
    [asset] = [folder for folder in tmp_path.glob("asset.*") if (folder / "reconciler" / "handlers" / "entry.py").exists()]
    files = {path.relative_to(asset).as_posix() for path in asset.rglob("*") if path.is_file()}
    # Then the runtime layers and the reviewed prices are there, and nothing that only operators or tests use
    for needed in (
        "reconciler/domain/prices.json",
        "reconciler/repository/dynamodb.py",
        "reconciler/service/event_settlement.py",
        "reconciler/notify/notifier.py",
    ):
        assert needed in files, f"{needed} is missing from the Lambda asset"
    unwanted = sorted(
        f for f in files if f.startswith(("reconciler/cli/", "reconciler/local/", "reconciler/ops/")) or "__pycache__" in f or ".egg-info" in f
    )
    assert unwanted == [], f"the Lambda asset carries files it does not need: {unwanted[:5]}"

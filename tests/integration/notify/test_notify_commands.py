"""Every command an alert suggests parses against the real `reconciler` CLI (runtime/reconciler/cli/main.py).

Until that CLI lands this test FAILS on purpose with a clear message: it is the contract between the alert
templates (reconciler/notify/commands.py) and the CLI, and must run once both are merged.
"""

from __future__ import annotations

import importlib
import shlex

import click
import pytest

from reconciler.notify import commands

# typer >= 0.29 vendors its own click (typer._click); accept both worlds.
EXITS: tuple[type[BaseException], ...] = (click.exceptions.Exit,)
USAGE_ERRORS: tuple[type[BaseException], ...] = (click.UsageError,)
try:
    import typer

    EXITS += (typer.Exit,)
    from typer._click.exceptions import UsageError as _TyperUsageError  # type: ignore[import-not-found]

    USAGE_ERRORS += (_TyperUsageError,)
except ImportError:  # an older typer on plain click
    pass

PLANNED = {"balance", "ledger", "adjust", "dlq", "scan", "audit", "alarms", "pause", "resume", "events", "backup"}


def test_templates_use_only_planned_commands_and_quote_user_values():
    for command in commands.every_template():
        argv = shlex.split(command.text)
        assert argv[:3] == ["reconciler", "--stage", "prod"], command.text
        assert argv[3] in PLANNED, command.text
        assert list(command.argv) == argv[1:]  # quoting round-trips (user ids with spaces and quotes)


def _is_group(command: object) -> bool:
    return hasattr(command, "resolve_command")


def _cli_root():
    try:
        module = importlib.import_module("reconciler.cli.main")
    except ModuleNotFoundError as error:
        pytest.fail(
            f"the reconciler CLI is not there yet ({error}); this contract test must pass once runtime/reconciler/cli/main.py is merged",
            pytrace=False,
        )
    import typer

    for value in vars(module).values():
        if isinstance(value, typer.Typer):
            return typer.main.get_command(value)
    for value in vars(module).values():
        if isinstance(value, click.Command) or _is_group(value):
            return value
    pytest.fail("reconciler.cli.main exposes neither a typer.Typer nor a click command", pytrace=False)


def _parse(root, argv: list[str]):
    """Parses argv down to the leaf command exactly as the CLI would, without running anything.

    Returns the leaf's context and the arguments that were handed to the leaf.
    """
    ctx = root.make_context("reconciler", list(argv), resilient_parsing=False)
    leaf_args = list(argv)
    while _is_group(ctx.command):
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") else [*ctx.protected_args, *ctx.args]
        assert rest, f"{argv}: stops at a group"
        name, sub, sub_args = ctx.command.resolve_command(ctx, rest)
        leaf_args = list(sub_args)
        ctx = sub.make_context(name, sub_args, parent=ctx, resilient_parsing=False)
    return ctx, leaf_args


@pytest.mark.parametrize("command", commands.every_template(), ids=lambda c: " ".join(c.argv[2:4]))
def test_every_suggested_command_parses_against_the_real_cli(command):
    # Given the real CLI
    root = _cli_root()
    argv = shlex.split(command.text)[1:]
    # When the suggestion is parsed (arguments, options, types; nothing runs)
    try:
        ctx, leaf_args = _parse(root, argv)
    except EXITS as exit_:  # e.g. an eager callback; parsing itself succeeded
        assert exit_.exit_code == 0, command.text  # noqa: PT017 - one of the outcomes, not one to demand
        return
    except USAGE_ERRORS as error:
        pytest.fail(f"`{command.text}` does not parse: {error.format_message()}", pytrace=False)
    # Then it reaches a leaf command, and `--help` on it works too
    assert not _is_group(ctx.command)
    with pytest.raises(EXITS) as help_exit:
        _parse(root, [*argv[: len(argv) - len(leaf_args)], "--help"])
    assert help_exit.value.exit_code == 0

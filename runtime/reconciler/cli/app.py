"""The root of the `reconciler` CLI: global options (before or after the command), output, one-line errors.

Each command group lives in its own module (cli/*_commands.py); cli/main.py puts them together.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Annotated

import jmespath
import typer
from jmespath.exceptions import JMESPathError
from typer.core import TyperGroup

from reconciler.cli.failures import Where, one_line
from reconciler.cli.output import FORMATS, Output
from reconciler.contract import STAGES
from reconciler.ops.target import Target

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

# Global options, accepted anywhere before a `--` (so `reconciler balance u1 --local` works).
_GLOBAL_FLAGS = {"--local", "--json", "--no-progress"}
_GLOBAL_VALUES = {"--stage", "--endpoint-url", "--output", "--query", "--profile", "--region"}


def hoist_global_options(args: list[str]) -> list[str]:
    """Moves global options (and their values) to the front, where the root command parses them."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        name = arg.split("=", 1)[0]
        if arg in _GLOBAL_FLAGS or (name in _GLOBAL_VALUES and "=" in arg):
            front.append(arg)
        elif arg in _GLOBAL_VALUES and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


class RootGroup(TyperGroup):
    """One line on stderr and a non-zero exit for every error a person can fix; never a traceback for those.

    Exit codes: 0 done, 1 failed or found something (an audit discrepancy, a failed replay), 2 usage error.
    """

    # click's main is overloaded on standalone_mode; this one always exits, so it keeps click's parameters untyped
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        args = hoist_global_options(list(sys.argv[1:] if args is None else args))
        try:
            code = super().main(args, prog_name or "reconciler", complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except typer.TyperException as error:  # usage errors: bad option, missing argument, unknown stage
            if type(error).__name__ == "NoArgsIsHelpError":  # the help was printed: nothing to add
                message = error.format_message().strip()
                if message:
                    typer.echo(message)
                sys.exit(2)
            typer.echo(f"error: {error.format_message()}", err=True)
            sys.exit(getattr(error, "exit_code", 2))
        except Exception as error:
            line = one_line(error, _where)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


# What the current invocation points at (set by the root callback), for the error messages.
_where = Where(stage="dev")


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("credit-reconciler")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        typer.echo(f"reconciler {version}")
        raise typer.Exit(0)


def root_app(help_text: str) -> typer.Typer:
    """A command line with this CLI's root: one-line errors, help on a bare command, global options anywhere
    (also the local stack's, `python -m emulator`)."""
    return typer.Typer(
        cls=RootGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings=CONTEXT_SETTINGS,
        help=f"{help_text} Global options may come before or after the command.",
    )


app = root_app("Operate the credit reconciler: balances, adjustments, jobs, DLQ, audits, alarms, emergency stop.")


@dataclass
class State:
    stage: str
    endpoint_url: str | None
    use_local: bool
    out: Output
    profile: str | None = None
    region: str | None = None
    _target: Target | None = field(default=None, repr=False)

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = Target.resolve(self.stage, self.endpoint_url, self.use_local, self.profile, self.region)
        return self._target

    def say_notes(self) -> None:
        if self._target is not None:
            while self._target.notes:
                self.out.note(f"note: {self._target.notes.pop(0)}")


def state_of(ctx: typer.Context) -> State:
    return ctx.find_root().obj


DryRun = Annotated[bool, typer.Option("--dry-run", help="Write nothing; say what would be done.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (prod).")]


@app.callback()
def main_options(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option(help=f"Stage: {' | '.join(STAGES)}.", envvar="RECONCILER_STAGE")] = "dev",
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="AWS endpoint (a local stack).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Use the stack started by `python -m emulator up` (a checkout) for --stage.")] = False,
    profile: Annotated[str | None, typer.Option(help="AWS profile (default: the standard credential chain).")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: your profile's, or AWS_DEFAULT_REGION).")] = None,
    output: Annotated[str, typer.Option("--output", help="table (people), json (one document), text (tab-separated records).")] = "table",
    json_output: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    query: Annotated[str | None, typer.Option("--query", help="JMESPath over the JSON result, as in the aws CLI.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress display (stderr).")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    global _where
    if stage not in STAGES:
        raise typer.BadParameter(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}", param_hint="--stage")
    if output not in FORMATS:
        raise typer.BadParameter(f"unknown output {output!r}; use one of {', '.join(FORMATS)}", param_hint="--output")
    if local and endpoint_url:
        raise typer.BadParameter("give either --local or --endpoint-url, not both", param_hint="--local")
    compiled = None
    if query is not None:
        try:
            compiled = jmespath.compile(query)
        except JMESPathError as error:
            raise typer.BadParameter(f"not a JMESPath expression: {error}".replace("\n", " "), param_hint="--query") from None
    out = Output("json" if json_output else output, compiled, progress_enabled=not no_progress)
    _where = Where(stage, endpoint_url, profile, local)
    ctx.obj = State(stage, endpoint_url, local, out, profile, region)

    def close() -> None:
        ctx.obj.say_notes()
        out.finish()

    ctx.call_on_close(close)

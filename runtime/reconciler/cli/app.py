"""The root of the `reconciler` CLI: global options (before or after the command), output, one-line errors.

Each command group lives in its own module (cli/*_commands.py); cli/main.py puts them together.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Annotated

import jmespath
import typer
from jmespath.exceptions import JMESPathError
from typer.core import TyperGroup

from reconciler.cli.failures import Where, explain
from reconciler.cli.output import FORMATS, Output
from reconciler.contract import STAGES
from reconciler.domain.validation import identifier
from reconciler.ops.operator_error import REFUSED

if TYPE_CHECKING:
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

    Exit codes (ops/operator_error.py; docs/operations.md, "Exit status"): 0 done, 1 failed or found something
    (an audit discrepancy, a failed replay), 2 usage error (a bad option, amount, id or time), 3 not found, 4 refused
    by a guard rail (nothing changed).
    """

    # click's main is overloaded on standalone_mode; this one always exits, so it keeps click's parameters untyped
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        args = hoist_global_options(list(sys.argv[1:] if args is None else args))
        try:
            code = super().main(args, prog_name or "reconciler", complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("error: aborted; nothing was changed", err=True)
            sys.exit(REFUSED)
        except typer.TyperException as error:  # usage errors: bad option, missing argument, unknown stage
            if type(error).__name__ == "NoArgsIsHelpError":  # the help was printed: nothing to add
                message = error.format_message().strip()
                if message:
                    typer.echo(message)
                sys.exit(2)
            typer.echo(f"error: {error.format_message()}", err=True)
            sys.exit(getattr(error, "exit_code", 2))
        except Exception as error:
            explained = explain(error, _where)
            if explained is None:
                raise
            typer.echo(f"error: {explained[0]}", err=True)
            sys.exit(explained[1])
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


def root_app(help_text: str, completion: bool = True) -> typer.Typer:
    """A command line with this CLI's root: one-line errors, help on a bare command, global options anywhere
    (also the local stack's, `python -m emulator`)."""
    return typer.Typer(
        cls=RootGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=completion,  # `reconciler --install-completion` (bash, zsh, fish, PowerShell), as gh has
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
            from reconciler.ops.target import Target  # here, not at import: `--help` loads no boto3

            self._target = Target.resolve(self.stage, self.endpoint_url, self.use_local, self.profile, self.region)
        return self._target

    def flags(self) -> list[str]:
        """The global options that chose this target, for every command the CLI prints to run next: pasted in
        another shell, a hint acts on the same stage and endpoint, never on what that shell's defaults point at."""
        chosen = ["--stage", self.stage]
        if self.use_local:
            chosen.append("--local")
        elif self.endpoint_url:
            chosen += ["--endpoint-url", self.endpoint_url]
        if not self.use_local:
            chosen += [*(["--profile", self.profile] if self.profile else []), *(["--region", self.region] if self.region else [])]
        return chosen

    def hint(self, command: str) -> str:
        """`reconciler FLAGS COMMAND`, to be pasted as it is."""
        return shlex.join(["reconciler", *self.flags()]) + f" {command}"

    def aws_hint(self, command: str) -> str:
        """`aws COMMAND` with the endpoint, profile and region of this target (the local stack's, behind --local)."""
        extra: list[str] = []
        endpoint = self.target.endpoint_url if self.use_local else self.endpoint_url
        if endpoint:
            extra += ["--endpoint-url", endpoint]
        region = self.target.local.region if self.target.local is not None else self.region
        extra += [*(["--profile", self.profile] if self.profile and not self.use_local else []), *(["--region", region] if region else [])]
        return f"aws {command} " + shlex.join(extra) if extra else f"aws {command}"

    def say_notes(self) -> None:
        if self._target is not None:
            while self._target.notes:
                self.out.note(f"note: {self._target.notes.pop(0)}")


def state_of(ctx: typer.Context) -> State:
    return ctx.find_root().obj


def check_endpoint_url(url: str, source: str = "--endpoint-url") -> None:
    """An endpoint as botocore takes it: http(s)://host[:port]; anything else is a usage error, not a traceback."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        valid = url == url.strip() and parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise typer.BadParameter(f"{url!r} is not an endpoint URL: give scheme and host, such as http://127.0.0.1:4566", param_hint=source)


def an_id(value: str | None) -> str | None:
    """An id argument (user, job, DLQ message): refused before any AWS call where it cannot be one (empty, blank,
    a newline), by the domain's rules for ids."""
    if value is None:
        return None
    try:
        return identifier("id", value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not an id: {getattr(error, 'reason', error)}") from None


UserId = Annotated[str, typer.Argument(callback=an_id, help="The user id.", show_default=False)]
JobId = Annotated[str, typer.Argument(callback=an_id, help="The job id.", show_default=False)]
MessageId = Annotated[str, typer.Argument(callback=an_id, help="The id or a unique prefix of it.", show_default=False)]
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
    output: Annotated[str, typer.Option("--output", help="table (people), json or yaml (one document), text (tab-separated records).")] = "table",
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
    if local and endpoint_url is not None:
        raise typer.BadParameter("give either --local or --endpoint-url, not both", param_hint="--local")
    if endpoint_url is not None:
        check_endpoint_url(endpoint_url)
    elif os.environ.get("AWS_ENDPOINT_URL") is not None and not local:  # botocore reads it where no --endpoint-url is given
        check_endpoint_url(os.environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL")
    compiled = None
    if query is not None:
        try:
            compiled = jmespath.compile(query)
        except JMESPathError as error:
            raise typer.BadParameter(f"not a JMESPath expression: {error}".replace("\n", " "), param_hint="--query") from None
    out = Output("json" if json_output else output, compiled, progress_enabled=not no_progress)
    if local and (profile or region):
        ignored = " and ".join(name for name, value in (("--profile", profile), ("--region", region)) if value)
        out.note(f"warning: {ignored} ignored with --local: the local stack's own credentials and region are used")
        profile = region = None
    # The aws CLI reads AWS_REGION before AWS_DEFAULT_REGION; botocore reads only the latter.
    region = region or (os.environ.get("AWS_REGION") if not local and not os.environ.get("AWS_DEFAULT_REGION") else None)
    _where = Where(stage, endpoint_url, profile, local)
    ctx.obj = State(stage, endpoint_url, local, out, profile, region)

    def close() -> None:
        ctx.obj.say_notes()
        out.finish()

    ctx.call_on_close(close)

"""The `baggan` command: one click group; each area's module lists its commands in `COMMANDS`."""

from __future__ import annotations

import sys
import traceback

import click

from baggan.allocator import keep_freed_memory
from baggan.denormals import flush_denormals
from baggan.errors import USER_ERRORS


TORCH_FREE = frozenset({"coco", "simulate", "prepare"})  # never compute with torch: start them without importing it
HELP = frozenset({"-h", "--help"})


def _usage_line(ctx: click.Context, e: click.UsageError) -> None:
    """Print a click usage error as one line (with where to find the command's help) and exit 2."""
    where = e.ctx.command_path if e.ctx is not None else ctx.command_path
    click.echo(f"error: {e.format_message()} (see: {where} --help)", err=True)
    ctx.exit(e.exit_code)


class _Group(click.Group):
    """Click group that turns user errors (baggan.errors.USER_ERRORS: ours and hfc's) and usage errors (exit 2) and
    OSError (exit 1) into one line on stderr (trace with --debug): the commands translate no library error themselves;
    docs/cli.md lists the exit codes (baggan/cli/interruptions.py)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:  # noqa: D401 - click hook
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            _usage_line(ctx, e)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # noqa: D401 - click hook
        ctx.meta["baggan.help"] = bool(HELP & set(args))  # the group's callback no longer sees the arguments
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):  # noqa: D401 - click hook
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            _usage_line(ctx, e)
        except USER_ERRORS as e:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except OSError as e:  # disk full, permission denied, a path that vanished: the user's to fix
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            where = f": {e.filename}" if e.filename else ""
            click.echo(f"error: {e.strerror or e}{where}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="baggan")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """BagGAN: annotated X-ray baggage scans from a StyleGAN2-ADA generator and a one-shot segmenter."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    keep_freed_memory()
    if ctx.invoked_subcommand not in TORCH_FREE and not ctx.meta.get("baggan.help"):
        flush_denormals()


def _register() -> None:
    """Attach every area's commands (its module's `COMMANDS`) to the group; a missing module is an ImportError."""
    import importlib

    for name in ("networks", "data", "train", "hfc", "synth", "coco", "evaluate", "quickstart", "oneshot", "label"):
        for command in importlib.import_module(f"baggan.cli.{name}").COMMANDS:
            cli.add_command(command)
    from baggan.cli.interruptions import attach

    attach(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="baggan")


if __name__ == "__main__":
    sys.exit(main())

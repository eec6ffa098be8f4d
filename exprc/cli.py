"""The `exprc` command line: one subcommand per module in `exprc.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from . import __version__
from .commands import COMMANDS
from .errors import ExprcError

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, what a shell reports for a writer whose reader went away


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exprc",
        description="Compile GP-evolved element-wise normalization expressions into fused Triton kernels.",
        epilog="Run 'exprc COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"exprc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = importlib.import_module(f"exprc.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Output piped into a reader that stops early (`| head`) ends the command
    quietly with status 141, as the shell's own tools do."""
    try:
        try:
            return _run_command(argv)
        finally:  # --help and --version exit through here too: a reader gone away shows now, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that flushing what is left at exit does not raise again (the Python docs'
    recipe for SIGPIPE, library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing will flush to the pipe
        pass


def _run_command(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args._run(args) or 0)
    except ExprcError as e:
        print(f"exprc {args.command}: error: {e.pretty()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        raise  # stdout's reader went away: main ends quietly
    except OSError as e:  # unreadable input, unwritable output, full disk: the user's to fix, not a crash
        print(f"exprc {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"exprc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `exprc` command line: one subcommand per module in `exprc.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands import COMMANDS
from .errors import ExprcError

EXIT_USER_ERROR = 2


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
    except OSError as e:  # unreadable input, unwritable output, full disk: the user's to fix, not a crash
        print(f"exprc {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"exprc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""One module per `exprc` subcommand.

Each module defines HELP (one line), DESCRIPTION (for `exprc CMD --help`), `add_arguments(parser)` and
`run(args) -> int`. Modules import heavy dependencies (torch, triton, jax, timm) inside `run`, so that
`exprc --help` stays fast and works without the optional extras.
"""

COMMANDS = ("compile", "check", "cost", "explain", "bench", "extract", "evolve", "plot", "realign", "digits")

"""The `digitlab` command: builds the parser from the subcommands' own (digitlab.commands) and calls the one
named; a DigitlabError becomes one line on stderr and its exit code."""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from digitlab.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="digitlab",
        description="Train, time, compare and serve handwritten-digit classifiers; reproduce Su (2018).",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from digitlab.errors import DigitlabError

    args = build_parser().parse_args(argv)
    args.argv = argv  # what this call was given (None: the process's own), for a command that repeats itself
    try:
        code = args.run(args)
    except DigitlabError as error:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process stops alike; one says why
            print(f"digitlab: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line of the UniX reproduction: python -m unixlib <command> (also installed as unixlib).

Each command parses its flags here and calls one library function; heavy modules are imported
only by the command that needs them. A user error (a missing path, an unknown profile, an
unreadable file, a locked run directory) prints one line "error: ..." and exits with 2
(UNIXLIB_TRACEBACK=1 shows the traceback instead).

Exit statuses of ``train`` and ``reproduce`` beyond 0 (done), 1 (failed) and 2 (user error):
75 = stopped by a preemption signal after writing a checkpoint of the step reached: requeue and
run the same command with --resume (train/preemption.py); 74 = a checkpoint could not be
written (a full disk), one line "error: ...": free space, then --resume (train/disk.py).

Exit status of ``describe``, ``draw``, ``prepare`` and ``evaluate``: 3 = finished, but some inputs
were rejected (an unreadable image, an empty report, a malformed CSV row, ...): everything else
was written, and each rejected input is in ``rejects.csv`` beside the output with its reason
(experiments/rejects.py). ``--fail-fast`` stops at the first bad input instead: one line
"error: ...", status 2. ``prepare``'s non-frontal views are excluded by design, not rejected.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from unixlib import __version__
from unixlib.cli import data, evaluate, model, series, train
from unixlib.cli.common import USER_ERROR_STATUS, Parser
from unixlib.train.runlock import RunLockedError

DESCRIPTION = "UniX reproduction: chest X-ray report generation and image generation in one model."
EXAMPLES = """examples:
  python -m unixlib reproduce --profile smoke           run the notebook series (CPU, minutes)
  python -m unixlib train --stage 1 --max-steps 20      train one stage of the smoke profile
  python -m unixlib train --stage 1 --resume            continue from the newest intact checkpoint
  python -m unixlib train --profile paper --stage 2 --dry-run   the plan: batch, memory, disk, inputs
  python -m unixlib describe --model papermill_runs/smoke/stage3/final chest.png scan.dcm
  python -m unixlib describe --model DIR folder/*.png --out reports.csv   bad files -> rejects.csv
  python -m unixlib draw --model papermill_runs/smoke/stage3/final \\
      --report "Moderate cardiomegaly. Small left pleural effusion." --out drawn/
  python -m unixlib model-info --preset paper           parameter counts, no weights allocated

exit status: 0 done, 1 failed, 2 user error; describe, draw, prepare, evaluate: 3 finished with
some inputs rejected (rejects.csv beside the output); train, reproduce: 74 disk full, 75 preempted.
"python -m unixlib COMMAND --help" lists a command's flags.
"""
# A user error: the command's input is wrong, not the code. One line, exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RunLockedError)


def build_parser() -> argparse.ArgumentParser:
    """The ``unixlib`` parser: one subcommand per command module's ``add_commands``."""
    parser = Parser(
        prog="unixlib",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"unixlib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)  # a Parser, as the parent
        p.set_defaults(func=func)
        return p

    for commands in (series, data, train, evaluate, model):
        commands.add_commands(add)
    return parser


def _one_line(err: BaseException) -> str:
    """The error as one line; an OSError as ``path: reason``."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, FileNotFoundError) and " " not in text:  # pyarrow: just the path
        text += ": no such file or directory"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print ``error: ...`` on one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        if os.environ.get("UNIXLIB_TRACEBACK"):  # debugging: the full traceback instead
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())

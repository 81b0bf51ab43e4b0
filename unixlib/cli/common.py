"""What every command module shares: the parser class with one-line errors, lazy choices."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

# A user error: the command's input is wrong, not the code. One line, exit status 2.
USER_ERROR_STATUS = 2
# describe, draw, prepare, evaluate: finished, but some inputs were rejected; each is in
# rejects.csv beside the output with its reason (the rest was written).
REJECTED_STATUS = 3
BATCH_EPILOG = (
    "exit status: 0 done, 1 failed, 2 user error (with --fail-fast: the first bad input), "
    f"{REJECTED_STATUS} finished with some inputs rejected: each is in rejects.csv beside the "
    "output with its reason"
)
# ``add(name, func, help)`` registers a subcommand and returns its parser (cli/main.py).
AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog.split()[-1]}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(USER_ERROR_STATUS)


class LazyChoices:
    """Choices computed on first use, so ``--help`` of other commands imports nothing heavy."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load = load

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __contains__(self, item: object) -> bool:
        return item in self._load()


def _profiles() -> list[str]:
    from unixlib.config import PROFILE_DIR

    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _presets() -> list[str]:
    from unixlib.model.config import PRESETS

    return sorted(PRESETS)


PROFILES, PRESETS = LazyChoices(_profiles), LazyChoices(_presets)


def add_fail_fast(p: argparse.ArgumentParser) -> None:
    """``--fail-fast`` and the exit statuses of a command that rejects bad inputs one by one."""
    p.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first bad input with its one-line error (status 2) instead of "
        "rejecting it and going on",
    )
    p.epilog = BATCH_EPILOG


def batch_status(n_rejected: int, where: str) -> int:
    """0, or :data:`REJECTED_STATUS` after one line on stderr saying how many inputs were
    rejected and where they are listed."""
    if not n_rejected:
        return 0
    noun = "input was" if n_rejected == 1 else "inputs were"
    print(f"{n_rejected} {noun} rejected: see {where}", file=sys.stderr)
    return REJECTED_STATUS


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]

"""Progress bars on stderr (results go to stdout, so pipes and ``--json`` stay clean)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr = Console(stderr=True)
QUIET_ENV = "TOKSUITE_QUIET"


# Values that mean "not quiet": an exported `TOKSUITE_QUIET=0` must not hide anything.
_NOT_QUIET = frozenset({"", "0", "false", "no", "off"})


def enabled() -> bool:
    """Whether progress bars are drawn: unless TOKSUITE_QUIET is set to a true value (1, yes…)."""
    return os.environ.get(QUIET_ENV, "").strip().lower() in _NOT_QUIET


def _ignore(n: float = 1) -> None:
    pass


@contextmanager
def progress_bar(
    description: str, total: float | None, *, show: bool = True
) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(n)``: a bar on stderr unless ``show`` is false or TOKSUITE_QUIET is set."""
    if not (show and enabled()):
        yield _ignore
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1) -> None:
            bar.advance(task, n)

        yield advance


def status(message: str) -> None:
    """One line on stderr (a finished stage, a warning). TOKSUITE_QUIET does not hide it: a
    warning such as "skipped 3 unreadable files" must be seen even where bars are unwanted."""
    stderr.print(message, highlight=False, soft_wrap=True)  # one line, even in a narrow log

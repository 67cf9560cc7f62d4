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


def enabled() -> bool:
    return not os.environ.get(QUIET_ENV)


@contextmanager
def progress_bar(
    description: str, total: float | None, *, show: bool = True
) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(n)``: a bar on stderr unless ``show`` is false or TOKSUITE_QUIET is set."""
    if not (show and enabled()):
        yield lambda n=1: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    if total is not None:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def status(message: str) -> None:
    """One line of progress on stderr (a finished stage, a warning)."""
    if enabled():
        stderr.print(message, highlight=False)

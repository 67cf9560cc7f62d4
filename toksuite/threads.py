"""How many CPU threads torch and BLAS get: one for small models, the default otherwise.

A model this small (non-embedding parameters) gains nothing from a second CPU thread: its matrices
are too small to split, and with busy cores the threads wait on each other (docs/benchmarks.md §6
has the measurement). The probes' logistic regressions suffer the same way (each L-BFGS step makes
many tiny BLAS calls), so `toksuite.linear_probe` runs each fit on one thread whatever is set here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

SMALL_MODEL_PARAMS = 1_000_000


def auto_threads(model: str, device: str = "auto") -> int | None:
    """1 thread for a small model on CPU; None (torch's default) otherwise."""
    from toksuite.model import count_parameters
    from toksuite.train.distributed import choose_device

    if choose_device(device).type != "cpu":
        return None
    return 1 if count_parameters(model, 0) < SMALL_MODEL_PARAMS else None


@contextmanager
def cpu_threads(n: int | None) -> Iterator[int]:
    """Limit torch and the BLAS / OpenMP pools to ``n`` threads (None: leave them); yield the count.

    threadpoolctl only limits libraries already loaded, hence the imports first.
    """
    import torch

    if n is None:
        yield torch.get_num_threads()
        return
    import scipy.optimize  # noqa: F401  (loads the OpenBLAS that L-BFGS uses)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield n
    finally:
        torch.set_num_threads(old)

"""Logistic-regression probes: C chosen on a validation split, then scored on test, many at once.

Each fit is an L-BFGS run on a small matrix (N × a few hundred features): its BLAS calls are too
small to split, and a BLAS pool of several threads mostly waits, worst on a machine whose cores
are shared. So every fit runs on one thread, and the fits (every layer × every C) run side by side
in worker processes, one per core (joblib's loky backend; ``LOKY_MAX_CPU_COUNT`` caps the count).
A worker takes about a second to start (it imports scikit-learn), so small probe sets (`digits` on
the tiny preset) stay in this process. Each fit is deterministic on one thread, so the scores do
not depend on how many processes ran them.

No torch here: the worker processes import this module and scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

C_GRID = (0.01, 0.1, 1.0, 10.0)
# Training values (samples × features, summed over fits) under which the fits stay in this process:
# about 3 s of fitting on one core, against about 1.5 s to start the workers (measured on 2 cores).
PARALLEL_MIN_VALUES = 10_000_000

# (x_train, y_train, x_test, y_test) of one probe
ProbeData = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def fit_score(x_fit, y_fit, x_score, y_score, c: float) -> float:
    """Standardise, fit logistic regression with inverse regularisation ``c``, return accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        return float(model.fit(x_fit, y_fit).score(x_score, y_score))


def validation_split(x: np.ndarray, y: np.ndarray, seed: int):
    """80/20 split of train, stratified when every class has two images or more."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=stratify)


def default_jobs(probes: Sequence[ProbeData], grid: Sequence[float] = C_GRID) -> int:
    """One process per core, at most one per fit; 1 when the fits are too small to be worth it."""
    from joblib import cpu_count

    fits = len(probes) * len(grid)
    if sum(x_train.size for x_train, *_ in probes) * len(grid) < PARALLEL_MIN_VALUES:
        return 1
    return max(1, min(cpu_count(), fits))


def fit_probes(
    probes: Sequence[ProbeData],
    *,
    seed: int = 0,
    grid: tuple[float, ...] = C_GRID,
    n_jobs: int | None = None,
) -> list[dict[str, float]]:
    """For each probe: pick C on a validation split of train, refit on all of train, score on test.

    ``n_jobs``: worker processes (None: `default_jobs`; 1: in this process).
    """
    from joblib import Parallel, delayed

    splits = [validation_split(x_train, y_train, seed) for x_train, y_train, _, _ in probes]
    jobs = n_jobs or default_jobs(probes, grid)
    with Parallel(n_jobs=jobs, backend="loky") as parallel:
        val = parallel(
            delayed(fit_score)(x_fit, y_fit, x_val, y_val, c)
            for x_fit, x_val, y_fit, y_val in splits
            for c in grid
        )
        k = len(grid)
        scores = [dict(zip(grid, val[i : i + k], strict=True)) for i in range(0, len(val), k)]

        def best_c(score: dict[float, float]) -> float:
            return max(grid, key=lambda c: (score[c], -c))  # ties → the smaller C (stronger)

        best = [best_c(s) for s in scores]
        test = parallel(
            delayed(fit_score)(x_train, y_train, x_test, y_test, c)
            for (x_train, y_train, x_test, y_test), c in zip(probes, best, strict=True)
        )
    return [
        {"test_accuracy": t, "val_accuracy": s[c], "C": c}
        for t, s, c in zip(test, scores, best, strict=True)
    ]


def fit_probe(x_train, y_train, x_test, y_test, *, seed: int = 0, n_jobs: int | None = None):
    """`fit_probes` for one probe."""
    return fit_probes([(x_train, y_train, x_test, y_test)], seed=seed, n_jobs=n_jobs)[0]

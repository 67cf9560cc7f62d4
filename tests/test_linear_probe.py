"""The logistic-regression probes: known answers, and the same scores however many processes fit."""

import numpy as np
import pytest

from toksuite.linear_probe import C_GRID, default_jobs, fit_probe, fit_probes


def _blobs(n: int, features: int, classes: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, features)) * 10
    y = np.arange(n) % classes
    return (centres[y] + rng.normal(0, spread, (n, features))).astype(np.float32), y


def test_separable_classes_score_one_and_ties_take_the_strongest_regularisation():
    x, y = _blobs(200, 8, 3, spread=0.1, seed=0)
    result = fit_probe(x[:150], y[:150], x[150:], y[150:], n_jobs=1)
    assert result == {"test_accuracy": 1.0, "val_accuracy": 1.0, "C": min(C_GRID)}


def test_labels_unrelated_to_the_features_score_near_chance():
    x, _ = _blobs(600, 8, 3, spread=0.1, seed=1)
    y = np.random.default_rng(2).integers(0, 3, 600)
    result = fit_probe(x[:400], y[:400], x[400:], y[400:], n_jobs=1)
    assert abs(result["test_accuracy"] - 1 / 3) < 0.12


@pytest.mark.parametrize("n_jobs", [2, None])
def test_scores_do_not_depend_on_the_number_of_processes(n_jobs):
    probes = []
    for seed, spread in enumerate((15.0, 30.0, 60.0)):  # overlapping classes: C matters
        x, y = _blobs(300, 16, 4, spread=spread, seed=seed)
        probes.append((x[:200], y[:200], x[200:], y[200:]))
    serial = fit_probes(probes, n_jobs=1)
    assert fit_probes(probes, n_jobs=n_jobs) == serial
    assert [r["test_accuracy"] for r in serial] == sorted(
        (r["test_accuracy"] for r in serial), reverse=True
    )  # more overlap, lower accuracy: each probe got its own data back


def test_small_probe_sets_stay_in_this_process_and_large_ones_use_every_core(monkeypatch):
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda: 16)
    small = [(np.zeros((1437, 64)), None, None, None)] * 3  # digits, tiny preset: 3 layers
    large = [(np.zeros((2000, 256)), None, None, None)] * 7  # CIFAR-10, small preset: 7 layers
    assert default_jobs(small) == 1
    assert default_jobs(large) == 16
    raw = [(np.zeros((2000, 3072)), None, None, None)]  # CIFAR-10's raw pixels
    assert default_jobs(raw) == len(C_GRID)  # fits, not probes, are the jobs

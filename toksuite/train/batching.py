"""Which images go into which batch: random, or length-bucketed so that padding costs little.

A batch is right-padded to its longest sequence, so a random batch of BPE sequences (CIFAR-10 at
32×32 with ``bpe-rgb``: 57 to 890 tokens) is about a third padding, and every padded slot costs
the same compute as a real token. ``bucket`` batching keeps each image its own sequence (nothing
changes in what the model sees or in its loss) and only chooses batches of similar lengths:

1. the epoch's permutation, exactly as ``random`` batching uses it (a pure function of
   ``(seed, epoch)``, so a resumed run replays the same batches);
2. cut into mega-batches of ``MEGABATCH`` batches, each sorted by length;
3. each mega-batch cut into batches, and all the epoch's batches put in a random order.

``MEGABATCH = 50`` is the multiplier of transformers' ``LengthGroupedSampler``: large enough that a
batch's lengths are close (0.97 real-token share on the case above, against 0.68 random), small
enough that an epoch still mixes long and short images from every part of the data.

Both batchings drop the same ``len % batch_size`` images per epoch and take the same number of
steps, so budgets in epochs, images or tokens mean the same under either.
"""

from __future__ import annotations

import numpy as np

from toksuite.errors import ConfigError
from toksuite.train.sequences import batch_width

BATCHINGS = ("bucket", "random")
DEFAULT_BATCHING = "bucket"
MEGABATCH = 50


def check_batching(batching: str) -> str:
    if batching not in BATCHINGS:
        raise ConfigError(f"--batching {batching!r}: expected one of {', '.join(BATCHINGS)}")
    return batching


def epoch_batches(
    lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int, batching: str
) -> list[np.ndarray]:
    """The global batches (image indices) of one epoch, in training order."""
    check_batching(batching)
    steps = len(lengths) // batch_size
    perm = np.random.default_rng([seed, epoch]).permutation(len(lengths))[: steps * batch_size]
    if batching == "random":
        return [perm[i * batch_size : (i + 1) * batch_size] for i in range(steps)]
    lengths = np.asarray(lengths)
    batches: list[np.ndarray] = []
    span = batch_size * MEGABATCH
    for start in range(0, len(perm), span):
        mega = perm[start : start + span]
        mega = mega[np.argsort(lengths[mega], kind="stable")]
        batches += [mega[i : i + batch_size] for i in range(0, len(mega), batch_size)]
    order = np.random.default_rng([seed, epoch, 1]).permutation(len(batches))
    return [batches[i] for i in order]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Every image once, in batches of similar length (evaluation and feature extraction, where
    the order does not matter: results are put back in the images' order)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padded_slots(lengths: np.ndarray, context: int, multiple: int) -> int:
    """Token slots one batch occupies: rows × its padded width (`sequences.batch_width`)."""
    return len(lengths) * batch_width(lengths, context, multiple)

"""Length-aware batching: which images share a batch, what it saves, what it leaves alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toksuite.compare.budget import RunShape, step_flops
from toksuite.errors import ConfigError
from toksuite.flops import flops_per_token, sequence_train_flops
from toksuite.model import CAUSAL_SDPA, build_model, resolve_shape
from toksuite.train.batching import epoch_batches, padded_slots, sorted_batches
from toksuite.train.sequences import make_batch, sequence_table


def skewed_lengths(n=1000, seed=0) -> np.ndarray:
    """Lengths spread like BPE's on CIFAR-10 (57–890, long tail)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(5.9, 0.45, n), 57, 890).astype(np.int64)


def share(lengths, batches, multiple=1) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    return real / sum(padded_slots(lengths[b], int(lengths.max()), multiple) for b in batches)


def test_random_batching_is_the_epoch_permutation_cut_in_order():
    lengths = skewed_lengths(100)
    batches = epoch_batches(lengths, 8, seed=3, epoch=2, batching="random")
    perm = np.random.default_rng([3, 2]).permutation(100)
    assert len(batches) == 12  # 100 // 8 steps; the last 4 images of the permutation wait
    assert np.array_equal(np.concatenate(batches), perm[:96])


def test_bucketed_batches_use_the_same_images_with_far_less_padding():
    lengths = skewed_lengths()
    bucket = epoch_batches(lengths, 32, seed=0, epoch=0, batching="bucket")
    random = epoch_batches(lengths, 32, seed=0, epoch=0, batching="random")
    assert [len(b) for b in bucket] == [32] * 31
    # the same images per epoch as random batching (the same ones left out), each once
    assert sorted(np.concatenate(bucket)) == sorted(np.concatenate(random))
    assert share(lengths, random) < 0.8 < 0.95 < share(lengths, bucket)
    again = epoch_batches(lengths, 32, seed=0, epoch=0, batching="bucket")
    assert all(np.array_equal(a, b) for a, b in zip(bucket, again, strict=True))  # resumable
    other = epoch_batches(lengths, 32, seed=0, epoch=1, batching="bucket")
    assert not all(np.array_equal(a, b) for a, b in zip(bucket, other, strict=True))
    # batches come in random order, not sorted: the first ones are not all the shortest
    means = [lengths[b].mean() for b in bucket]
    assert means != sorted(means)


def test_unknown_batching_is_one_clear_error():
    with pytest.raises(ConfigError, match="--batching 'sorted': expected one of bucket, random"):
        epoch_batches(skewed_lengths(10), 2, seed=0, epoch=0, batching="sorted")


def test_sorted_batches_cover_every_image_once():
    lengths = skewed_lengths(103)
    batches = sorted_batches(lengths, 10)
    assert sorted(np.concatenate(batches)) == list(range(103))
    pairs = zip(batches, batches[1:], strict=False)
    assert all(lengths[a].max() <= lengths[b].min() for a, b in pairs)


def test_sequence_flops_count_each_sequence_at_its_own_length():
    shape = resolve_shape("tiny")
    lengths = np.array([3, 10, 65])
    by_hand = sum(n * flops_per_token(shape, 50, n) for n in lengths)
    assert sequence_train_flops(shape, 50, lengths) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("batching", ["bucket", "random"])
def test_an_epochs_flops_do_not_depend_on_the_batching(batching):
    lengths = skewed_lengths(64)
    run = RunShape(lengths, int(lengths.max()), 100, 8, batching)
    per_step = step_flops(run, "tiny", 0, run.steps_per_epoch)
    expected = sum(
        sequence_train_flops(resolve_shape("tiny"), 100, lengths[b])
        for b in epoch_batches(lengths, 8, seed=0, epoch=0, batching="random")
    )
    assert per_step.sum() == pytest.approx(expected, rel=1e-12)


def test_padded_batch_logits_equal_each_image_alone():
    """Right padding under causal attention: every real position sees only its own image."""
    torch.manual_seed(0)
    model = build_model("tiny", 40, 64, seed=0, attn_implementation=CAUSAL_SDPA).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 39, size=n) for n in (5, 17, 30, 12)]
    data = sequence_table(seqs, bos_id=39, context=64)
    batch = sorted_batches(data.lengths, 4)[0]
    ids, _, _ = make_batch(data, batch, multiple=8)
    with torch.no_grad():
        together = model(ids, use_cache=False).logits
        for row, i in enumerate(batch):
            n = int(data.lengths[i])
            alone = model(data.gather([i], n), use_cache=False).logits
            torch.testing.assert_close(together[row, :n], alone[0], rtol=1e-5, atol=1e-5)


class CountingArray:
    """A flat token array that records which elements a gather reads."""

    def __init__(self, values: np.ndarray):
        self.values, self.read = values, []

    def __getitem__(self, index):
        self.read.append(np.asarray(index))
        return self.values[index]


def test_batches_are_gathered_from_the_flat_ids_and_read_only_their_rows():
    """A batch equals the rows padded at full width then trimmed, and it reads exactly the ids
    of its own rows: a process under torchrun touches only its shard of the token cache."""
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 50, size=n) for n in rng.integers(0, 40, 64)]
    data = sequence_table(seqs, bos_id=50, context=33, pad_id=3)  # some cut to 32 ids
    assert data.truncated == sum(len(s) > 32 for s in seqs)
    for i, s in enumerate(seqs):  # full width: BOS, the (cut) ids, then padding
        row = data.gather([i])[0].numpy()
        n = min(len(s), 32)
        assert row[0] == 50 and row[1 : 1 + n].tolist() == s[:n].tolist()
        assert (row[1 + n :] == 3).all()
    data.flat = CountingArray(data.flat)
    batch = epoch_batches(data.lengths, 16, seed=0, epoch=0, batching="bucket")[0]
    world = 2
    for rank in range(world):
        shard = batch[rank::world]
        data.flat.read.clear()
        ids, labels, real = make_batch(data, shard, multiple=1)
        assert ids.shape == (len(shard), int(data.lengths[shard].max()))
        assert real == int(data.lengths[shard].sum())
        read = np.sort(np.concatenate(data.flat.read))
        spans = [np.arange(data.starts[i], data.starts[i] + data.lengths[i] - 1) for i in shard]
        assert read.tolist() == np.sort(np.concatenate(spans)).tolist()
        for row, i in enumerate(shard):
            n = int(data.lengths[i])
            assert ids[row, :n].tolist() == [50, *seqs[i][: n - 1].tolist()]
            assert (labels[row, n:] == -100).all() and (labels[row, :n] == ids[row, :n]).all()
    head = data.head(5)
    assert len(head) == 5 and head.flat is data.flat and head.context == data.context

"""Forward FLOPs of the shared GPT-2, counted with fvcore and cross-checked by a closed form.

Conventions, named in every result:

* **MACs** are multiply-adds. fvcore counts one multiply-add as one "flop"; what fvcore reports
  is therefore MACs here, and ``flops = 2 × macs`` (the convention of MFU formulas and of GPU
  peak numbers).
* **Attention is counted in full**: Q·Kᵀ and attn·V are T×T per head, although the causal mask
  lets a fused kernel skip about half of it. The closed form below and nanoGPT's MFU formula count
  it the same way, so all three agree.
* What is counted is fvcore's default set (matmuls, linear layers, layer norms at 5 per element)
  plus the attention handles below; elementwise ops (adds, GELU, softmax) and embedding lookups
  are not multiply-adds and are listed in ``uncounted_ops``. The layer norms are the only part the
  closed form leaves out: 0.1–0.3% at widths of 256 and more, about 1% at width 64.

fvcore gets GPT-2 wrong out of the box in two ways, fixed here:

1. transformers' GPT-2 returns a cache object that the JIT tracer rejects → `logits_only` calls it
   with ``use_cache=False, return_dict=False`` and returns the logits tensor alone;
2. fvcore has no handle for ``aten::scaled_dot_product_attention`` (the default "sdpa" attention)
   and counts it as zero with a warning: at 1,024 tokens a 4-layer, 256-wide GPT-2 is undercounted
   by 39% → `sdpa_flop_jit` counts Q·Kᵀ and attn·V. The eager path's ``aten::matmul`` is counted by
   fvcore itself; ``aten::baddbmm`` (GPT-2's ``reorder_and_upcast_attn`` path) gets a handle too.

Models are traced on PyTorch's meta device: tensors carry shapes but no data, so nothing is
computed and the paper's 36-layer model traces in about a second even at 37k tokens. fvcore's
count is exactly ``A·T + B·T²`` in the sequence length T (matmuls and layer norms grow with T, the
attention scores with T²) and every layer counts the same; `fit_forward_cost` reads A and B off
traces of 1- and 2-layer models, scales them to the full depth and checks the result on one trace of
the full model. The polynomial also gives the exact mean over images of different lengths (BPE),
which is not the count at the mean length.

Training FLOPs, two ways: `image_flops` (fvcore's count × 3, the FLOPs columns of `toksuite flops`
and of compare) and `sequence_train_flops` (nanoGPT's 6·N + 12·L·d·T per real token, what the
training loop counts and `toksuite.mfu` divides by the peak).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from toksuite.model import (
    ModelShape,
    check_attn,
    count_parameters,
    gpt2_config,
    resolve_shape,
)

__all__ = [
    "CONVENTION",
    "ClosedForm",
    "FlopCount",
    "ForwardCost",
    "closed_form_macs",
    "count_forward",
    "fit_forward_cost",
    "flops_per_token",
    "fvcore_analysis",
    "image_flops",
    "logits_only",
    "sequence_train_flops",
    "training_flops_per_image",
]

CONVENTION = (
    "MACs = multiply-adds (fvcore counts 1 multiply-add as 1 flop); FLOPs = 2 × MACs; "
    "attention counted over the full T×T (the causal half is not skipped); training = 3 × forward"
)

# Ops that do multiply-adds: if fvcore ever leaves one of these uncounted the total is wrong, so
# results flag them apart from the elementwise ops (add, softmax, gelu …) fvcore skips by design.
_MATMUL_LIKE = ("mm", "matmul", "linear", "einsum", "conv", "attention")


# --------------------------------------------------------------------------- fvcore handles
def _shape(value: Any) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(value)
    if shape is None:  # an incomplete tensor type: fvcore cannot count it either
        raise RuntimeError("a traced attention input has no complete shape")
    return list(shape)


def sdpa_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``scaled_dot_product_attention(q, k, v, …)``: Q·Kᵀ plus attn·V, full T×S.

    q is (…, T, E), k is (…, S, E), v is (…, S, Ev); the leading dims (batch, heads) are the
    query's (with grouped-query attention k and v have fewer heads, but every query head still
    does its own products).
    """
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    t, e = q[-2], q[-1]
    s, ev = k[-2], v[-1]
    return batch * t * s * e + batch * t * s * ev


def baddbmm_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of ``baddbmm(input, b1, b2)``: b1 (B, n, m) @ b2 (B, m, p); the add is elementwise."""
    b1, b2 = _shape(inputs[1]), _shape(inputs[2])
    return math.prod(b1) * b2[-1]


EXTRA_HANDLES = {
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
    "aten::baddbmm": baddbmm_flop_jit,
}


def logits_only(model):
    """Wrap a causal LM so that calling it returns only the logits tensor (fvcore traces that).

    torch is imported here, not at module level, so that the CLI starts fast.
    """
    import torch

    class _LogitsOnly(torch.nn.Module):
        """Call a causal LM without a cache and return only the logits (fvcore can trace that)."""

        def __init__(self, model: torch.nn.Module):
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, use_cache=False, return_dict=False)[0]

    return _LogitsOnly(model)


def fvcore_analysis(model, input_ids, *, fix_attention: bool = True):
    """A quiet `fvcore.nn.FlopCountAnalysis` of ``model(input_ids)`` → logits.

    ``fix_attention=False`` gives plain fvcore (SDPA counted as zero), for comparison.
    """
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(logits_only(model), input_ids)
    if fix_attention:
        for name, handle in EXTRA_HANDLES.items():
            analysis.set_op_handle(name, handle)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


# --------------------------------------------------------------------------- one count
@dataclass(frozen=True)
class FlopCount:
    """fvcore's count of one forward pass over ``batch_size`` sequences of ``seq_len`` tokens."""

    seq_len: int
    batch_size: int
    macs: int
    by_operator: dict[str, int]
    uncounted_ops: dict[str, int]  # op → number of calls fvcore had no handle for
    attn_implementation: str
    convention: str = CONVENTION

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def missed_matmul_ops(self) -> list[str]:
        """Uncounted ops that do multiply-adds: non-empty means the count is too low."""
        return sorted(op for op in self.uncounted_ops if _is_matmul_like(op))


def _is_matmul_like(op: str) -> bool:
    name = op.split("::")[-1]
    return name != "embedding" and any(key in name for key in _MATMUL_LIKE)


def count_forward(
    shape: str | ModelShape,
    vocab_size: int,
    seq_len: int,
    *,
    attn_implementation: str = "sdpa",
    batch_size: int = 1,
    device: str = "meta",
    model=None,
    fix_attention: bool = True,
) -> FlopCount:
    """Count one forward pass with fvcore (on the meta device unless ``device`` says otherwise).

    Pass ``model`` to count an existing model (on its own device; ``shape`` and ``vocab_size``
    are then unused); it must accept ``seq_len`` positions.
    """
    import torch

    if model is not None:
        attn_implementation = getattr(model.config, "_attn_implementation", attn_implementation)
    check_attn(attn_implementation)  # fvcore handles are written for these two only
    if model is None:
        config = gpt2_config(shape, vocab_size, seq_len, attn_implementation=attn_implementation)
        from transformers import GPT2LMHeadModel

        with torch.device(device):
            model = GPT2LMHeadModel(config)
    model.eval()
    model_device = next(model.parameters()).device
    input_ids = torch.zeros(batch_size, seq_len, dtype=torch.long, device=model_device)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent Python branches
        analysis = fvcore_analysis(model, input_ids, fix_attention=fix_attention)
        macs = int(analysis.total())
        by_operator = dict(analysis.by_operator())
        uncounted = dict(Counter(analysis.unsupported_ops()))
    return FlopCount(
        seq_len=seq_len,
        batch_size=batch_size,
        macs=macs,
        by_operator=by_operator,
        uncounted_ops=uncounted,
        attn_implementation=attn_implementation,
    )


# --------------------------------------------------------------------------- closed form
@dataclass(frozen=True)
class ClosedForm:
    """GPT-2 forward MACs for one sequence of T tokens, by part."""

    linear: int  # per layer QKV 3Td² + projection Td² + MLP 8Td², times layers
    attention: int  # per layer Q·Kᵀ T²d + attn·V T²d, times layers
    head: int  # output head T·d·V

    @property
    def macs(self) -> int:
        return self.linear + self.attention + self.head

    @property
    def flops(self) -> int:
        return 2 * self.macs


def closed_form_macs(shape: str | ModelShape, seq_len: int, vocab_size: int) -> ClosedForm:
    """Per layer ``12·T·d² + 2·T²·d`` MACs plus the head ``T·d·V`` (biases, norms left out)."""
    s = resolve_shape(shape)
    t, d = seq_len, s.n_embd
    return ClosedForm(
        linear=s.n_layer * 12 * t * d * d,
        attention=s.n_layer * 2 * t * t * d,
        head=t * d * vocab_size,
    )


# ------------------------------------------------------------------------ cost as a function of T
@dataclass(frozen=True)
class ForwardCost:
    """fvcore's forward MACs per sequence as ``per_token·T + per_token_pair·T²``.

    ``per_token_pair·T²`` is exactly the attention score and value products; everything else
    (matmuls of the layers and head, layer norms) grows with T.
    """

    shape: ModelShape
    vocab_size: int
    attn_implementation: str
    per_token: Fraction
    per_token_pair: Fraction
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    traced_lengths: tuple[int, ...] = ()

    def macs(self, seq_len: float) -> float:
        t = Fraction(seq_len)
        return float(self.per_token * t + self.per_token_pair * t * t)

    def attention_macs(self, seq_len: float) -> float:
        return float(self.per_token_pair * Fraction(seq_len) ** 2)

    def mean_macs(self, lengths) -> tuple[float, float]:
        """Mean total and attention MACs over sequences of these lengths (not at the mean T)."""
        lengths = [int(n) for n in lengths]
        if not lengths:
            return 0.0, 0.0
        first = sum(lengths) / len(lengths)
        second = sum(n * n for n in lengths) / len(lengths)
        attention = float(self.per_token_pair) * second
        return float(self.per_token) * first + attention, attention

    @property
    def missed_matmul_ops(self) -> list[str]:
        return sorted(op for op in self.uncounted_ops if _is_matmul_like(op))


def _quadratic(shape: ModelShape, vocab_size: int, attn: str, lengths: tuple[int, int]):
    """(A, B) with fvcore's MACs = A·T + B·T², from traces at two lengths."""
    t1, t2 = lengths
    c1, c2 = (count_forward(shape, vocab_size, t, attn_implementation=attn).macs for t in lengths)
    pair = (Fraction(c2, t2) - Fraction(c1, t1)) / (t2 - t1)
    return Fraction(c1, t1) - pair * t1, pair


@lru_cache(maxsize=64)
def fit_forward_cost(
    shape: str | ModelShape,
    vocab_size: int,
    *,
    attn_implementation: str = "sdpa",
    probe_lengths: tuple[int, int] = (64, 128),
    check_length: int = 257,
) -> ForwardCost:
    """fvcore's forward MACs of the model as ``A·T + B·T²``, checked on a full-depth trace.

    Tracing the paper's 36 layers takes about 2 s, one layer 0.1 s, and every layer has the same
    shapes: so A and B are read off models of depth 1 and 2 (each traced at two lengths: per-layer
    part = depth 2 − depth 1; the rest, embeddings to head, = depth 1 − per layer) and scaled to the
    full depth. One trace of the full model at ``check_length`` must then agree exactly; otherwise
    (a new op, a changed model) RuntimeError, since every number built on the fit would be off.
    """
    shape = resolve_shape(shape)
    attn = attn_implementation
    one = _quadratic(ModelShape(shape.n_embd, 1, shape.n_head), vocab_size, attn, probe_lengths)
    two = _quadratic(ModelShape(shape.n_embd, 2, shape.n_head), vocab_size, attn, probe_lengths)
    token, pair = (one[i] + (shape.n_layer - 1) * (two[i] - one[i]) for i in (0, 1))
    check = count_forward(shape, vocab_size, check_length, attn_implementation=attn)
    cost = ForwardCost(
        shape=shape,
        vocab_size=vocab_size,
        attn_implementation=attn,
        per_token=token,
        per_token_pair=pair,
        uncounted_ops=dict(check.uncounted_ops),
        traced_lengths=(*probe_lengths, check_length),
    )
    if cost.macs(check_length) != check.macs:
        raise RuntimeError(
            f"fvcore's count of the full model at T={check_length} ({check.macs}) differs from "
            f"the fit on depths 1 and 2 ({cost.macs(check_length):.0f})"
        )
    return cost


# --------------------------------------------------------------------------- per image, training
def image_flops(cost: ForwardCost, lengths) -> dict[str, float]:
    """The FLOPs columns of one encoder's row (`toksuite flops` and compare): forward MACs and
    FLOPs, training FLOPs (3 × forward: backward ≈ 2 × forward) and the attention's share.

    ``lengths``: tokens of each image (the mean over images, which is not the count at the mean
    length), or one number (every image that long).
    """
    if np.ndim(lengths) == 0:
        macs, attention = cost.macs(lengths), cost.attention_macs(lengths)
    else:
        macs, attention = cost.mean_macs(lengths)
    return {
        "fwd_macs": macs,
        "fwd_flops": 2 * macs,
        "train_flops": 3 * 2 * macs,
        "attention_share": attention / macs if macs else 0.0,
    }


def training_flops_per_image(
    shape: str | ModelShape,
    vocab_size: int,
    seq_len: float,
    *,
    attn_implementation: str = "sdpa",
) -> float:
    """FLOPs to train on one image of ``seq_len`` tokens, from fvcore's count (`image_flops`)."""
    shape = resolve_shape(shape)
    cost = fit_forward_cost(shape, vocab_size, attn_implementation=attn_implementation)
    return image_flops(cost, seq_len)["train_flops"]


def flops_per_token(
    shape: str | ModelShape,
    vocab_size: int,
    seq_len: int,
    *,
    training: bool = True,
) -> int:
    """nanoGPT's MFU formula: ``6·N + 12·L·d·T`` FLOPs per trained token (forward only: a third).

    N is `count_parameters(non_embedding=True)` (position embeddings out, the tied head in).
    It agrees with 3 × 2 × the closed form divided by T up to biases and norms (≈0.1%).
    """
    s = resolve_shape(shape)
    n = count_parameters(s, vocab_size, non_embedding=True)
    train = 6 * n + 12 * s.n_layer * s.n_embd * seq_len
    return train if training else train // 3


def sequence_train_flops(shape: str | ModelShape, vocab_size: int, lengths) -> float:
    """Training FLOPs of sequences of these lengths, each at its own length (no padding counted):
    what the training loop counts, and what its MFU divides by the peak.

    `flops_per_token` is ``a + b·T``, so n tokens at length n cost ``a·n + b·n²``.
    """
    lengths = np.asarray(lengths, np.float64)
    a = float(flops_per_token(shape, vocab_size, 0))
    b = float(flops_per_token(shape, vocab_size, 1)) - a
    return float(a * lengths.sum() + b * (lengths * lengths).sum())

"""The shared GPT-2: one shape for every encoder; only vocabulary and context follow the encoder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from toksuite.errors import ConfigError, UnknownNameError


@dataclass(frozen=True)
class ModelShape:
    """Width, depth and heads of the GPT-2 every encoder is trained with."""

    n_embd: int
    n_layer: int
    n_head: int

    def __post_init__(self) -> None:
        if min(self.n_embd, self.n_layer, self.n_head) < 1 or self.n_embd % self.n_head:
            raise ConfigError(
                f"bad model shape {self}: sizes must be positive and n_embd divisible by n_head"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


PRESETS: dict[str, ModelShape] = {
    # A few seconds per epoch on `digits` on 2 CPU cores: for CI and the default demo.
    "tiny": ModelShape(n_embd=64, n_layer=2, n_head=2),
    # One GPU in minutes (and still bearable on CPU for short runs).
    "small": ModelShape(n_embd=256, n_layer=6, n_head=8),
    # OpenAI iGPT-S's shape.
    "igpt-s": ModelShape(n_embd=512, n_layer=24, n_head=8),
    # The paper's model: ≈484M parameters with a 30k vocabulary.
    "paper": ModelShape(n_embd=1024, n_layer=36, n_head=8),
}
PRESET_HELP = ", ".join(
    f"{name} ({s.n_layer}×{s.n_embd}, {s.n_head} heads)" for name, s in PRESETS.items()
)


# The attention implementations a FLOPs count is made for (fvcore traces each differently).
ATTENTION_CHOICES = ("sdpa", "eager")


def check_attn(value: str) -> str:
    """``--attn`` / ``attn =``: the one check of an attention implementation's name."""
    if value not in ATTENTION_CHOICES:
        raise ConfigError(f"--attn {value!r}: expected {' or '.join(ATTENTION_CHOICES)}")
    return value


def resolve_shape(spec: str | ModelShape) -> ModelShape:
    """A preset name or ``WIDTHxDEPTHxHEADS`` (e.g. ``256x4x4``) → ModelShape."""
    if isinstance(spec, ModelShape):
        return spec
    key = spec.strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    parts = key.split("x")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return ModelShape(n_embd=int(parts[0]), n_layer=int(parts[1]), n_head=int(parts[2]))
    raise UnknownNameError(
        f"unknown model preset {spec!r}; presets: {PRESET_HELP}; or give WIDTHxDEPTHxHEADS"
    )


# Training and probing feed right-padded sequences without an attention mask: causality alone keeps
# every real token from seeing the padding after it, and SDPA's `is_causal` flag is that mask. With
# transformers' own "sdpa", GPT-2 first builds a mask, and building it inspects the position ids on
# the host (`find_packed_sequence_indices`): one GPU→CPU sync per forward pass. transformers skips
# mask building for attention implementations absent from its mask registry, so this one is
# registered under its own name. It is never saved: `save_pretrained` does not write the attention
# implementation, and a reloaded model is plain "sdpa" (which sampling needs for its padding masks).
CAUSAL_SDPA = "toksuite_causal_sdpa"


def _causal_sdpa(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    kwargs.pop("is_causal", None)
    return sdpa_attention_forward(module, query, key, value, None, is_causal=True, **kwargs)


def _register_causal_sdpa() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(CAUSAL_SDPA, _causal_sdpa)


@contextmanager
def causal_sdpa(model) -> Iterator[None]:
    """Run a GPT-2 on right-padded, mask-free input with `CAUSAL_SDPA`; restore its attention."""
    _register_causal_sdpa()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = CAUSAL_SDPA
    try:
        yield
    finally:
        config._attn_implementation = before


def gpt2_config(
    shape: str | ModelShape,
    vocab_size: int,
    n_positions: int,
    *,
    attn_implementation: str = "sdpa",
):
    """A `transformers.GPT2Config` for this shape, vocabulary and context length.

    Dropout is off: these are short pretraining runs on small data, compared across encoders,
    and dropout would only add noise to that comparison.
    """
    from transformers import GPT2Config

    s = resolve_shape(shape)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=s.n_embd,
        n_layer=s.n_layer,
        n_head=s.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # The tanh GELU of GPT-2 ("gelu_new") in one fused kernel instead of eight elementwise ones.
        activation_function="gelu_pytorch_tanh",
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,
    )
    if attn_implementation == CAUSAL_SDPA:
        _register_causal_sdpa()
    config._attn_implementation = attn_implementation
    return config


def build_model(
    shape: str | ModelShape,
    vocab_size: int,
    n_positions: int,
    *,
    attn_implementation: str = "sdpa",
    seed: int | None = None,
):
    """A freshly initialised `transformers.GPT2LMHeadModel`."""
    import torch
    from transformers import GPT2LMHeadModel

    if seed is not None:
        torch.manual_seed(seed)
    config = gpt2_config(shape, vocab_size, n_positions, attn_implementation=attn_implementation)
    return GPT2LMHeadModel(config)


def count_parameters(
    shape: str | ModelShape,
    vocab_size: int,
    n_positions: int = 0,
    *,
    non_embedding: bool = True,
) -> int:
    """Parameters of `build_model`'s GPT-2, by formula (no model is built).

    Per layer: two layer norms (2·2d), QKV (3d² + 3d), attention projection (d² + d), MLP
    (8d² + 5d) → 12d² + 13d. Plus the token embedding (V·d, tied with the output head), the
    final layer norm (2d) and the position embedding (n_positions·d). With ``non_embedding``
    (nanoGPT's default for MFU) the position embedding is left out; the token embedding stays
    in because, tied, it is also the output head, which does a matmul per token.
    """
    s = resolve_shape(shape)
    d = s.n_embd
    total = s.n_layer * (12 * d * d + 13 * d) + vocab_size * d + 2 * d
    if not non_embedding:
        total += n_positions * d
    return total

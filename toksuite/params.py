"""The one grammar of encoder parameters given as text: ``-p [ENCODER:]KEY=VALUE``.

* ``KEY=VALUE`` sets KEY on every encoder of the command that has a parameter KEY;
* ``ENCODER:KEY=VALUE`` sets it on that encoder only (a name or an alias);
* a KEY that none of the encoders takes is an error, so a typo never falls back to a default.

KEY may use ``-`` for ``_``. Each encoder parses its own VALUEs (`Encoder.parse_params`), so the
types are the ones its parameters declare. The compare TOML's ``[params.ENCODER]`` tables name
encoders and keys the same way (`encoder_tables`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from toksuite.errors import EncoderParamError

if TYPE_CHECKING:
    from toksuite.encoders.base import Encoder


def normalise_key(key: str) -> str:
    return key.strip().replace("-", "_")


def split_param(pair: str) -> tuple[str | None, str, str]:
    """``[ENCODER:]KEY=VALUE`` → (ENCODER or None, KEY, ``KEY=VALUE``).

    A ``:`` after the ``=`` is part of the value (``-p centers=c:/palette.npy``), not a target.
    """
    head, _, _ = pair.partition("=")
    if ":" in head:
        target, _, rest = pair.partition(":")
        return target.strip(), normalise_key(rest.partition("=")[0]), rest
    return None, normalise_key(head), pair


def params_by_encoder(names: Sequence[str], pairs: Sequence[str] | None) -> dict[str, dict]:
    """Each encoder's parsed parameters (registry name → params, only encoders given some)."""
    from toksuite.registry import get_encoder_class

    classes = [get_encoder_class(n) for n in names]
    params: dict[str, dict[str, Any]] = {}
    for pair in pairs or []:
        target, key, rest = split_param(pair)
        if target:
            chosen = [get_encoder_class(target)]
        else:
            chosen = [cls for cls in classes if key in {s.name for s in cls.param_specs()}]
            if not chosen and len(classes) == 1:
                classes[0].parse_params([rest])  # its own error lists the parameters it has
            if not chosen:
                raise EncoderParamError(
                    f"-p {pair}: none of {', '.join(names)} has a parameter {key!r}"
                )
        for cls in chosen:
            params.setdefault(cls.name, {}).update(cls.parse_params([rest]))
    return params


def params_for(cls: type[Encoder], pairs: Sequence[str] | None) -> dict[str, Any]:
    """One encoder's parameters (commands that take one encoder: fit, encode, pretrain, …)."""
    from toksuite.registry import canonical_name

    for pair in pairs or []:
        target, _, _ = split_param(pair)
        if target and canonical_name(target) != cls.name:
            raise EncoderParamError(f"-p {pair}: this command's encoder is {cls.name}")
    return params_by_encoder([cls.name], pairs).get(cls.name, {})


def param_grid(names: Sequence[str], pairs: Sequence[str] | None) -> dict[str, list[dict]]:
    """``-p [ENCODER:]KEY=V1,V2,…`` → every combination of the values, per encoder (a sweep).

    ``["levels=6,10", "k=32"]`` gives each encoder that takes ``levels`` two settings, and the
    ones that also take ``k`` both with ``k=32``; ``bpe-grey:levels=6`` only that encoder's. A KEY
    that none of the encoders takes is an error, as with a single value.
    """
    from toksuite.registry import canonical_name, get_encoder_class

    classes = [get_encoder_class(n) for n in names]
    axes: dict[tuple[str | None, str], list[str]] = {}
    for pair in pairs or []:
        target, key, rest = split_param(pair)
        _, sep, values = rest.partition("=")
        if not sep:
            raise EncoderParamError(f"parameter {pair!r}: expected KEY=VALUE")
        if target:
            target = canonical_name(target)
            if target not in {cls.name for cls in classes}:
                raise EncoderParamError(f"-p {pair}: {target} is not one of {', '.join(names)}")
        axes[(target, key)] = [v.strip() for v in values.split(",")]
    grids: dict[str, list[dict]] = {}
    used: set[tuple[str | None, str]] = set()
    for cls in classes:
        takes = {s.name for s in cls.param_specs()}
        # Its own values where it has them, else the shared ones of the keys it takes.
        mine: dict[str, tuple[str | None, str]] = {
            k: (t, k) for t, k in axes if t is None and k in takes
        }
        mine |= {k: (t, k) for t, k in axes if t == cls.name}
        used.update(mine.values())
        keys = list(mine)
        grids[cls.name] = [
            cls.parse_params([f"{k}={v}" for k, v in zip(keys, combo, strict=True)])
            for combo in itertools.product(*(axes[mine[k]] for k in keys))
        ]
    for _, key in axes.keys() - used:
        raise EncoderParamError(f"parameter {key!r}: none of {', '.join(names)} takes it")
    return grids


def encoder_tables(tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``[params.ENCODER]`` tables (already typed by TOML) keyed by registry name, keys as the
    encoders name them; an alias and its name merge, in file order."""
    from toksuite.registry import canonical_name

    out: dict[str, dict[str, Any]] = {}
    for encoder, table in tables.items():
        name = canonical_name(encoder)
        out.setdefault(name, {}).update({normalise_key(k): v for k, v in table.items()})
    return out

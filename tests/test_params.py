"""The one ``-p [ENCODER:]KEY=VALUE`` grammar (`toksuite.params`), as every command reads it."""

from __future__ import annotations

import pytest

from toksuite.errors import EncoderParamError
from toksuite.params import (
    encoder_tables,
    param_grid,
    params_by_encoder,
    params_for,
    split_param,
)


@pytest.mark.parametrize(
    "pair, parsed",
    [
        ("vocab_size=300", (None, "vocab_size", "vocab_size=300")),
        ("vocab-size=300", (None, "vocab_size", "vocab-size=300")),
        ("bpe-grey:levels=6", ("bpe-grey", "levels", "levels=6")),
        (" kmeans : k=4", ("kmeans", "k", " k=4")),
        ("centers=c:/palette.npy", (None, "centers", "centers=c:/palette.npy")),  # value's colon
        ("rows", (None, "rows", "rows")),
    ],
)
def test_split_param(pair, parsed):
    assert split_param(pair) == parsed


def test_a_shared_key_goes_to_every_encoder_that_takes_it_and_a_target_to_one():
    names = ["bpe-grey", "pixels-grey", "kmeans"]
    params = params_by_encoder(names, ["levels=6", "kmeans:k=4", "bpe-grey:levels=8"])
    assert params == {"bpe-grey": {"levels": 8}, "pixels-grey": {"levels": 6}, "kmeans": {"k": 4}}
    assert params_by_encoder(names, None) == {}
    with pytest.raises(EncoderParamError, match="none of bpe-grey, kmeans has a parameter 'foo'"):
        params_by_encoder(["bpe-grey", "kmeans"], ["foo=1"])
    with pytest.raises(EncoderParamError, match="levels"):
        params_by_encoder(names, ["levels=many"])


def test_one_encoder_commands_read_the_same_grammar():
    from toksuite.registry import get_encoder_class

    cls = get_encoder_class("bpe-grey")
    assert params_for(cls, ["vocab_size=300", "bpe-grey:levels=6"]) == {
        "vocab_size": 300,
        "levels": 6,
    }
    assert params_for(cls, None) == {}
    with pytest.raises(EncoderParamError, match="has no parameter 'k' \\(parameters: "):
        params_for(cls, ["k=4"])  # its own message, which lists what it takes
    with pytest.raises(EncoderParamError, match="this command's encoder is bpe-grey"):
        params_for(cls, ["kmeans:k=4"])


def test_a_sweep_takes_targets_too():
    grid = param_grid(["bpe-grey", "pixels-grey"], ["levels=6,10", "pixels-grey:levels=4"])
    assert grid["bpe-grey"] == [{"levels": 6}, {"levels": 10}]
    assert grid["pixels-grey"] == [{"levels": 4}]  # its own values win over the shared ones
    with pytest.raises(EncoderParamError, match="kmeans is not one of"):
        param_grid(["pixels-grey"], ["kmeans:k=4,8"])
    with pytest.raises(EncoderParamError, match="expected KEY=VALUE"):
        param_grid(["pixels-grey"], ["levels"])


def test_toml_tables_name_encoders_and_keys_as_the_cli_does():
    tables = {"bpe-grey": {"vocab-size": 300}, "pixels-grey": {"levels": 10}}
    assert encoder_tables(tables) == {
        "bpe-grey": {"vocab_size": 300},
        "pixels-grey": {"levels": 10},
    }

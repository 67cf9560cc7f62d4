"""The token file (`toksuite.tokenfile`): what `encode` writes, `decode` reads back, checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toksuite.errors import DataError
from toksuite.tokenfile import TOKENS_FORMAT, read_tokens, write_tokens


def test_round_trip_and_a_bare_list(tmp_path):
    path = tmp_path / "t.json"
    write_tokens(path, np.array([3, 1, 2]), encoder="pixels-grey", shape=(1, 3, 1))
    doc = json.loads(path.read_text())
    assert doc == {
        "format": TOKENS_FORMAT,
        "version": 1,
        "encoder": "pixels-grey",
        "shape": [1, 3, 1],
        "ids": [3, 1, 2],
    }
    tokens = read_tokens(path)
    assert tokens.ids.dtype == np.int64 and tokens.ids.tolist() == [3, 1, 2]
    assert tokens.shape == (1, 3, 1) and tokens.encoder == "pixels-grey"
    tokens.check_encoder("pixels-grey", path)
    with pytest.raises(DataError, match="written by encoder 'pixels-grey', not 'kmeans'"):
        tokens.check_encoder("kmeans", path)
    path.write_text("[5, 6]")
    bare = read_tokens(path)
    assert bare.ids.tolist() == [5, 6] and bare.shape is None and bare.encoder is None
    bare.check_encoder("kmeans", path)  # says nothing, so anything may read it


@pytest.mark.parametrize(
    "text, message",
    [
        ("not json", "not a JSON token file"),
        ('{"shape": [2, 2]}', "expected a JSON object with an 'ids' list"),
        ('{"ids": [1, 2.5]}', "'ids' must be integers"),
        ('{"ids": [true]}', "'ids' must be integers"),
        (f'{{"ids": [1, {2**64}]}}', "does not fit in 64 bits"),
        ('{"ids": [1], "shape": [0, 2]}', "'shape' must be"),
        ('{"ids": [1], "shape": null}', "'shape' must be"),
        ('{"ids": [1], "shape": [2, 2, 2, 2]}', "'shape' must be"),
        ('{"format": "other", "ids": [1]}', "format 'other', not a 'toksuite-tokens' file"),
        ('{"format": "toksuite-tokens", "version": 2, "ids": [1]}', "token file version 2"),
        ('{"version": "1", "ids": [1]}', "token file version '1'"),
        ('{"encoder": 3, "ids": [1]}', "'encoder' must be an encoder name"),
    ],
)
def test_bad_files_are_one_data_error(tmp_path, text, message):
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_tokens(path)
    with pytest.raises(DataError, match="no such file"):
        read_tokens(tmp_path / "missing.json")

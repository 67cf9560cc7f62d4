"""A run directory's config.json is one typed contract: `RunInfo`, written and read the same way.

Nothing here trains: the model and encoder of a run are built and saved directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toksuite.errors import ConfigError
from toksuite.model import ModelShape, build_model
from toksuite.registry import create_encoder
from toksuite.train.config import TrainConfig
from toksuite.train.rundir import (
    CONFIG_FILE,
    DataInfo,
    EncoderInfo,
    ModelInfo,
    RunInfo,
    load_run,
    save_model,
)

# config.json as the first toksuite that trained wrote it: no batching, no evaluations during
# training, and options from before --batching, --eval-every, --eval-images and --on-error.
OLD_CONFIG = {
    "options": {
        "encoder": "pixels-grey",
        "encoder_params": {},
        "data": "digits",
        "resolution": None,
        "crop": None,
        "limit": 40,
        "model": "tiny",
        "epochs": 1.0,
        "tokens": None,
        "images": None,
        "train_flops": None,
        "time": None,
        "batch_size": 16,
        "lr": 0.002,
        "min_lr_ratio": 0.1,
        "warmup_steps": None,
        "weight_decay": 0.1,
        "beta1": 0.9,
        "beta2": 0.95,
        "grad_clip": 1.0,
        "context": None,
        "seed": 3,
        "log_every": 10,
        "checkpoint_every": 100,
        "eval_batch_size": 64,
        "compile": False,
        "device": "auto",
        "peak_flops": None,
    },
    "encoder": {
        "name": "pixels-grey",
        "params": {"levels": 256},
        "vocab_size": 256,
        "channels": 1,
        "saved": "encoder",
    },
    "model": {
        "shape": {"n_embd": 64, "n_layer": 2, "n_head": 2},
        "vocab_size": 257,
        "bos_id": 256,
        "n_positions": 65,
        "n_params": 54208,
        "saved": "model",
    },
    "data": {"spec": "digits", "image_shape": [8, 8, 1], "train_images": 40, "heldout_images": 40},
    "context": 65,
    "truncated": {"train": 0, "heldout": 0},
    "batch_size": 16,
    "steps": 3,
    "steps_per_epoch": 2,
    "warmup_steps": 1,
    "world_size": 1,
    "device": "cpu",
}


def current_info() -> RunInfo:
    """What today's training loop writes for a small run."""
    return RunInfo(
        options=TrainConfig(limit=40, batch_size=16, seed=3, epochs=1.0),
        encoder=EncoderInfo("pixels-grey", {"levels": 256}, 256, 1),
        model=ModelInfo(ModelShape(64, 2, 2), 257, bos_id=256, n_positions=65, n_params=54208),
        data=DataInfo("digits", (8, 8, 1), 40, 40),
        context=65,
        truncated={"train": 0, "heldout": 0},
        batch_size=16,
        batching="bucket",
        steps=3,
        steps_per_epoch=2,
        warmup_steps=1,
        eval_every=1,
        eval_images=40,
        world_size=1,
        device="cpu",
    )


def test_an_old_config_loads_with_what_such_a_run_had():
    info = RunInfo.from_dict(OLD_CONFIG)
    assert info.batching == "random" and info.options.batching == "random"
    assert info.eval_every is None and info.eval_images is None
    assert info.options.on_error == "stop" and info.options.seed == 3
    assert info.model.shape == ModelShape(n_embd=64, n_layer=2, n_head=2)
    assert info.model.bos_id == 256 and info.context == 65
    assert info.data.image_shape == (8, 8, 1) and info.image_hw == (8, 8)
    assert info.encoder.name == "pixels-grey" and info.encoder.channels == 1


def test_the_written_layout_is_the_one_older_consumers_read():
    """Every key an old config.json had is still written, with the same value and type."""
    doc = json.loads(json.dumps(RunInfo.from_dict(OLD_CONFIG).to_dict()))
    for key, value in OLD_CONFIG.items():
        if key == "options":
            assert {k: doc[key][k] for k in value} == value
        else:
            assert doc[key] == value, key


def test_a_current_config_round_trips(tmp_path):
    info = current_info()
    info.save(tmp_path)
    doc = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert list(doc) == [  # the order the loop always wrote
        "options",
        "encoder",
        "model",
        "data",
        "context",
        "truncated",
        "batch_size",
        "batching",
        "steps",
        "steps_per_epoch",
        "warmup_steps",
        "eval_every",
        "eval_images",
        "world_size",
        "device",
    ]
    assert doc["model"]["shape"] == {"n_embd": 64, "n_layer": 2, "n_head": 2}
    assert doc["data"]["image_shape"] == [8, 8, 1]
    assert RunInfo.load(tmp_path) == info


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "not a run directory"),
        ("{", "not JSON"),
        ('{"options": {}}', "not a run's config.json"),
        (json.dumps({**OLD_CONFIG, "model": {"shape": {"n_embd": 64}}}), "not a run's"),
    ],
)
def test_a_bad_config_is_one_config_error(tmp_path, text, message):
    if text is not None:
        (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match=message):
        RunInfo.load(tmp_path)


def _old_run(path: Path) -> Path:
    """A run directory as an old toksuite left it: old config.json, encoder/ and model/."""
    path.mkdir()
    (path / CONFIG_FILE).write_text(json.dumps(OLD_CONFIG))
    create_encoder("pixels-grey").save(path / "encoder")
    save_model(build_model("tiny", 257, 65, seed=3), path / "model")
    return path


def test_an_old_run_directory_loads_for_every_consumer(tmp_path):
    run = load_run(_old_run(tmp_path / "old"))
    assert run.label == "old" and run.info == RunInfo.from_dict(OLD_CONFIG)
    assert run.encoder.name == "pixels-grey"
    assert run.model.config.n_positions == 65 and run.model.config.vocab_size == 257
    options = run.load_options()
    assert (options.channels, options.limit, options.seed) == (1, 40, 3)


def test_probe_sample_and_compress_read_an_old_run(tmp_path):
    """The consumers go through `load_run`: an untrained old run still probes, samples and
    compresses (the numbers are meaningless; that they run is the point)."""
    from toksuite.compress import compress_files
    from toksuite.probe import random_init_model
    from toksuite.sample import sample_run

    path = _old_run(tmp_path / "old")
    run = load_run(path)
    assert random_init_model(run).config.n_positions == 65
    result = sample_run(path, out_dir=tmp_path / "s", n_samples=1, n_completions=1)
    assert result["image_shape"] == [8, 8, 1]
    packed = compress_files(path, [], heldout=1, out=tmp_path / "c")
    assert packed["images"][0]["round_trip"]


def test_a_directory_without_a_model_is_not_a_finished_run(tmp_path):
    (tmp_path / CONFIG_FILE).write_text(json.dumps(OLD_CONFIG))
    with pytest.raises(ConfigError, match="not a finished pretraining run"):
        load_run(tmp_path)

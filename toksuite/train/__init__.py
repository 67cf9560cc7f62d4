"""Pretraining: the same GPT-2, optimiser and schedule for every encoder's sequences."""

from toksuite.train.config import TrainConfig
from toksuite.train.loop import pretrain

__all__ = ["TrainConfig", "pretrain"]

"""Built-in data sources."""

from __future__ import annotations

import numpy as np

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.transform import finish


class DigitsSource(DataSource):
    """scikit-learn's 1,797 8×8 grey digits (0–16 scaled to 0–255): embedded, no files needed."""

    name = "digits"
    description = "scikit-learn's 8×8 grey digits, embedded (the default)"

    def load(self, options: LoadOptions) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
        return finish("digits", images, bunch.target.astype(np.int64), options,
                      class_names=[str(i) for i in range(10)])

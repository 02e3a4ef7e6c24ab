"""scikit-learn's digits as torch tensors (shipped with scikit-learn: no download).

1,797 grey-scale 8x8 images of handwritten digits (UCI optical recognition data set), pixel
values 0..16. :func:`load_digits_data` returns a seeded, stratified train/test split with the
images scaled to [0, 1] as ``N x 1 x 8 x 8`` float32 tensors (the MLPs flatten them), and the raw
integer pixels for integer-only training.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from .._deps import require_torch

torch = require_torch()

DIGITS_MAX_PIXEL = 16  # load_digits pixels are integers 0..16


@dataclass
class DigitsData:
    """A train/test split; ``x_*`` float in [0, 1], ``x_*_int`` the integer pixels 0..16 (int8)."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    x_train_int: "torch.Tensor"
    x_test_int: "torch.Tensor"
    seed: int

    @property
    def num_classes(self) -> int:
        return int(self.y_train.max()) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def subset(self, n_train: int, n_test: int | None = None) -> "DigitsData":
        """The first ``n_train`` training (and ``n_test`` test) samples (for quick tests)."""
        nt = n_test if n_test is not None else len(self.y_test)
        return DigitsData(self.x_train[:n_train], self.y_train[:n_train], self.x_test[:nt], self.y_test[:nt],
                          self.x_train_int[:n_train], self.x_test_int[:nt], self.seed)


def load_digits_data(seed: int = 0, test_fraction: float = 0.25) -> DigitsData:
    """Stratified split of scikit-learn's ``load_digits`` (``random_state=seed``)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}", source="digits data",
                          field="test_fraction")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ConfigError("the digits data set needs scikit-learn: pip install 'accelsim[torch]'",
                          source="digits data") from None
    ds = load_digits()
    x, y = ds.images.astype("int64"), ds.target.astype("int64")
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    xtr_i = torch.from_numpy(xtr).to(torch.int8).unsqueeze(1)
    xte_i = torch.from_numpy(xte).to(torch.int8).unsqueeze(1)
    return DigitsData(
        x_train=xtr_i.to(torch.float32) / DIGITS_MAX_PIXEL, y_train=torch.from_numpy(ytr),
        x_test=xte_i.to(torch.float32) / DIGITS_MAX_PIXEL, y_test=torch.from_numpy(yte),
        x_train_int=xtr_i, x_test_int=xte_i, seed=seed)


__all__ = ["DigitsData", "load_digits_data", "DIGITS_MAX_PIXEL"]

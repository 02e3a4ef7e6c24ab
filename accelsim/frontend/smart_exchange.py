"""SmartExchange decomposition: W ~ Ce B with a small basis B and a sparse power-of-two Ce.

Zhao, Chen, Wang, Li, You, Fu, Xie, Wang, Lin, "SmartExchange: Trading Higher-cost Memory
Storage/Access for Lower-cost Computation", ISCA 2020 (arXiv 2005.03403).

Layout (as in the authors' follow-up code, VITA-Group/SmartDeal ``se/conv_mask.py``): every output
row of the GEMM-view weight (length ``n = in/groups * kh * kw``) is cut into ``R = ceil(n / S)``
pieces of ``S = basis_size`` consecutive weights (for a 3x3 conv with S = 3: the ``C*kh x kw``
matrix of one filter), giving ``X_k`` (R x S). Each output row k gets its own basis ``B_k``
(S x S, stored at ``basis_bits``) and coefficients ``Ce_k`` (R x S) so ``X_k ~ Ce_k B_k``.
(The paper also splits the input channels in chunks of 64 with one basis per chunk; one basis per
output row is the coarser choice and is what the exported record describes.)

Fitting, following the paper's "alternating least squares + projection" recipe:
1. init from the SVD of each ``X_k`` (``Ce = U S``, ``B = V^T``: exact);
2. repeat ``iterations`` times: normalise each Ce column to max |.| = 1 (scale moved into B),
   keep the ``ce_density`` fraction of Ce entries of largest magnitude (layer-wide), round the rest
   to signed powers of two with ``2^(ce_bits-1) - 1`` exponents (sign + exponent bits), then
   refit B by least squares; finally quantise B to ``basis_bits`` (symmetric, per layer).
Zero rows of Ce (vector-wise sparsity) make zero pieces of W, which the accelerator skips.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ._deps import require_torch
from .quantization import quantize_int, quantize_pow2

torch = require_torch()


@dataclass
class SmartExchangeResult:
    """The decomposition of one weight tensor."""

    weight: "torch.Tensor"  # rebuilt W (natural layout)
    ce: "torch.Tensor"  # rows x R x S (signed powers of two or 0)
    basis: "torch.Tensor"  # rows x S x S
    basis_size: int
    ce_density: float
    ce_bits: int
    basis_bits: int
    rel_error: float  # ||W - Ce B||^2 / ||W||^2

    @property
    def ce_levels(self) -> int:
        """Distinct non-zero magnitudes used in Ce."""
        nz = self.ce[self.ce != 0].abs()
        return int(torch.unique(nz).numel())

    def storage_bits(self) -> int:
        """nnz(Ce) x ce_bits + numel(B) x basis_bits (index metadata not included)."""
        return int((self.ce != 0).sum()) * self.ce_bits + self.basis.numel() * self.basis_bits


def _project_ce(ce: "torch.Tensor", density: float, bits: int) -> "torch.Tensor":
    flat = ce.abs().reshape(-1)
    keep = max(1, int(round(density * flat.numel())))
    if keep < flat.numel():
        idx = torch.argsort(flat, descending=True, stable=True)[:keep]
        mask = torch.zeros(flat.numel(), dtype=torch.bool)
        mask[idx] = True
        ce = ce * mask.reshape(ce.shape)
    return quantize_pow2(ce, bits, per_channel=False)


def decompose(w: "torch.Tensor", basis_size: int = 3, ce_density: float = 0.5, ce_bits: int = 4,
              basis_bits: int = 8, iterations: int = 4) -> SmartExchangeResult:
    """SmartExchange decomposition of ``w`` (conv or linear weight, natural layout)."""
    S = basis_size
    w2 = w.detach().double().reshape(w.shape[0], -1)
    K, n = w2.shape
    R = math.ceil(n / S)
    x = torch.zeros(K, R * S, dtype=torch.float64)
    x[:, :n] = w2
    x = x.reshape(K, R, S)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)  # K x R x r, K x r, K x r x S
    r = s.shape[1]
    ce = torch.zeros(K, R, S, dtype=torch.float64)
    basis = torch.zeros(K, S, S, dtype=torch.float64)
    ce[:, :, :r] = u * s[:, None, :]
    basis[:, :r, :] = vh
    for _ in range(iterations):
        scale = ce.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)  # K x 1 x S (per column)
        ce = ce / scale
        basis = basis * scale.transpose(1, 2)
        ce = _project_ce(ce, ce_density, ce_bits)
        basis = torch.linalg.pinv(ce) @ x  # least squares refit of B
    basis = quantize_int(basis, basis_bits, symmetric=True, per_channel=False) if basis_bits < 16 else basis
    rebuilt = (ce @ basis).reshape(K, R * S)[:, :n]
    err = float((rebuilt - w2).pow(2).sum() / w2.pow(2).sum().clamp_min(1e-30))
    density = float((ce != 0).double().mean())
    return SmartExchangeResult(rebuilt.reshape(w.shape).to(w.dtype), ce.float(), basis.float(), S, density,
                               ce_bits, basis_bits, err)


__all__ = ["SmartExchangeResult", "decompose"]

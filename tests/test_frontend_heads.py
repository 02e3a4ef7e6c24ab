"""Attention-head pruning (issue 12): ranked by a stated criterion, masked, physically removed by
``pruned_module()`` (outputs equal the masked model), export MACs drop and equal FlopCounterMode."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from accelsim.errors import ConfigError  # noqa: E402
from accelsim.frontend import compress, export  # noqa: E402
from accelsim.frontend.heads import PrunedMultiheadAttention, head_scores  # noqa: E402

nn = torch.nn
HEAD = {"types": ["attention"], "prune": {"kind": "head", "density": 0.5}}


class Encoder(nn.Module):
    """Self-attention (packed in_proj) + cross-attention (separate kdim/vdim projections) + FFN."""

    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=batch_first)
        self.cross = nn.MultiheadAttention(32, 8, kdim=16, vdim=12, batch_first=batch_first)
        self.ln = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 10)
        self.bf = batch_first

    def forward(self, x, mem):
        y, _ = self.attn(x, x, x)
        z, _ = self.cross(x + y, mem[..., :16], mem[..., 16:28])
        return self.fc(self.ln(x + y + z))


def flop_macs(model, x):
    """Total MACs by torch's FlopCounterMode (MHA fast path off so the counter sees every matmul)."""
    from torch.utils.flop_counter import FlopCounterMode

    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(*x) if isinstance(x, tuple) else model(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("batch_first", [True, False])
def test_head_pruning_removes_heads_physically(batch_first):
    torch.manual_seed(1)
    model = Encoder(batch_first).eval()
    x = torch.randn(2, 5, 32) if batch_first else torch.randn(5, 2, 32)
    mem = torch.randn(2, 7, 28) if batch_first else torch.randn(7, 2, 28)
    cm = compress(model, HEAD, example_input=(x, mem))
    pm = cm.pruned_module()
    with torch.no_grad():
        dense, masked, pruned = model(x, mem), cm(x, mem), pm(x, mem)
    assert (dense - masked).abs().max() > 1e-3  # heads really were removed
    assert torch.allclose(masked, pruned, atol=1e-5, rtol=0)
    a, c = pm.get_submodule("attn"), pm.get_submodule("cross")
    assert isinstance(a, PrunedMultiheadAttention) and (a.num_heads, c.num_heads) == (2, 4)
    assert a.in_proj_weight.shape == (3 * 2 * 8, 32) and a.out_proj.weight.shape == (32, 16)
    assert c.k_proj_weight.shape == (4 * 4, 16) and c.v_proj_weight.shape == (16, 12)
    n_model = sum(p.numel() for p in model.parameters())
    n_pm = sum(p.numel() for p in pm.parameters())
    # self-attn: 2 of 4 heads x 8 dims x (3 * 32 rows + 3 biases + 32 out_proj columns); cross: 4 of 8 heads x 4 dims
    assert n_model - n_pm == 2 * 8 * (3 * 32 + 3 + 32) + 4 * 4 * (32 + 16 + 12 + 3 + 32)
    wm, wp, wd = export(cm, (x, mem)), export(pm, (x, mem)), export(model, (x, mem))
    strip = [{k: v for k, v in layer.model_dump().items() if k != "compression"} for layer in wm.layers]
    assert strip == [{k: v for k, v in layer.model_dump().items() if k != "compression"} for layer in wp.layers]
    assert wm["attn.in_proj"].out_features == 48 and wm["attn.scores"].heads == 2
    assert wm["attn.out_proj"].in_features == 16 and wm["cross.k_proj"].out_features == 16
    assert wm["attn.scores"].compression.original == {"heads": 4}
    assert flop_macs(pm, (x, mem)) == wm.total_macs == wp.total_macs < wd.total_macs == flop_macs(model, (x, mem))
    # removing half the heads halves the attention's MACs (projections, scores, context, out_proj)
    att = lambda wl, s: sum(layer.macs for layer in wl.layers if layer.name.startswith(s + "."))  # noqa: E731
    assert att(wm, "attn") * 2 == att(wd, "attn") and att(wm, "cross") * 2 == att(wd, "cross")
    assert wm.densified().total_macs == wd.total_macs


def test_criterion_by_hand():
    """Importance = squared L2 norm of a head's Q/K/V rows, biases and out_proj columns."""
    torch.manual_seed(0)
    m = nn.MultiheadAttention(8, 4)  # head_dim 2
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.randn(24, 8))
        m.in_proj_bias.copy_(torch.randn(24))
        m.in_proj_weight[[2, 3, 10, 11, 18, 19]] *= 0.01  # head 1 nearly silent in Q, K and V
        m.out_proj.weight[:, 6:8] *= 0.01  # head 3 nearly silent at the output
    w, b, wo = m.in_proj_weight.detach().numpy(), m.in_proj_bias.detach().numpy(), m.out_proj.weight.detach().numpy()
    ref = [sum((w[i * 8 + 2 * h:i * 8 + 2 * h + 2] ** 2).sum() + (b[i * 8 + 2 * h:i * 8 + 2 * h + 2] ** 2).sum()
               for i in range(3)) + (wo[:, 2 * h:2 * h + 2] ** 2).sum() for h in range(4)]
    assert np.allclose(head_scores(m).numpy(), ref)
    cm = compress(nn.Sequential(m), {"types": ["attention"], "prune": {"kind": "head", "density": 0.5}})
    keep = cm.units["0"].masks["in_proj_weight"][:8, 0].reshape(4, 2).all(1).tolist()
    assert keep == list(np.argsort(ref)[::-1][:2].__contains__(h) for h in range(4))
    l1 = compress(nn.Sequential(m), {"types": ["attention"], "prune": {"kind": "head", "density": 0.25,
                                                                       "criterion": "l1"}})
    assert int(l1.units["0"].masks["in_proj_bias"].sum()) == 3 * 2  # one head kept: its Q, K, V biases


def test_recipe_rules_for_heads():
    model = Encoder().eval()
    # head pruning on a linear layer named explicitly: one-line error naming the override
    with pytest.raises(ConfigError, match="head pruning applies to attention layers") as ei:
        compress(model, {"overrides": [{"names": ["fc"], "prune": {"kind": "head", "density": 0.5}}]})
    assert ei.value.field == "overrides[0].prune"
    # a regex-only override: head pruning reaches the attention modules, quantisation the linears
    cm = compress(model, {"overrides": [{"regex": ".*", "prune": {"kind": "head", "density": 0.25}},
                                        {"regex": ".*", "quantize": {"weight_bits": 4}}]})
    assert cm.units["attn"].prune.kind == "head" and cm.units["attn"].quant is None
    assert cm.units["fc"].quant.weight_bits == 4 and cm.units["fc"].prune is None
    # attention is not a default type: existing recipes never touch it
    cm = compress(model, {"prune": {"kind": "unstructured", "density": 0.5}})
    assert "attn" not in cm.units and "attn.out_proj" in cm.units
    # quantising an attention type is not supported: a note, not a silent no-op
    cm = compress(model, {"types": ["attention"], "quantize": {"weight_bits": 4}})
    assert any("attention layers take only head pruning" in n for n in cm.notes)


def test_opaque_transformer_layer_keeps_masked_heads_with_a_note():
    """fx keeps torch.nn.TransformerEncoderLayer opaque (its fast-path checks cannot be traced): the
    heads are masked (outputs change), pruned_module cannot remove them and says so."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)).eval()
    x = torch.randn(2, 6, 32)
    cm = compress(model, {"types": ["attention"], "prune": {"kind": "head", "density": 0.5}}, example_input=x)
    pm = cm.pruned_module()
    with torch.no_grad():
        assert torch.allclose(cm(x), pm(x), atol=1e-5, rtol=0) and not torch.allclose(cm(x), model(x), atol=1e-3)
    assert any("0.self_attn is inside a module fx keeps opaque" in n for n in cm.notes)

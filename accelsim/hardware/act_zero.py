"""What a kind's ``sparsity:`` block (:mod:`accelsim.hardware.sparsity`) asks the datapath to do
with zero input activations, for the kinds whose engines read it as one mode (gather-scatter,
SmartExchange, crossbar): ``compute.action`` when it acts on ``inputs`` or the
``intersection``, else ``none``. Per-level read actions are not modelled separately by these
engines (their compute action decides what is read); :func:`unmodelled_level_actions` names them."""
from __future__ import annotations

from .sparsity import SparsityBase


def act_zero_mode(block: SparsityBase) -> str:
    """``none`` / ``gate`` / ``skip`` on zero input activations."""
    c = block.compute
    return c.action if c.acts_on("inputs") else "none"


def unmodelled_level_actions(block: SparsityBase) -> list[str]:
    """``levels.<name>`` entries with a read action these engines do not model on their own."""
    return [n for n in block.level_names() if block.level(n).action != "none"]

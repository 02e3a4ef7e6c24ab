"""``accelsim warmup`` compiles (or loads from numba's cache) every USER-mode kernel ahead of use."""
from __future__ import annotations


def test_warmup_compiles_the_replay_kernels(capsys):
    from accelsim.cli import main
    from accelsim.sim import scalesim_user

    assert main(["warmup"]) == 0
    assert "kernels ready" in capsys.readouterr().out
    assert scalesim_user._replay.signatures  # compiled for the argument types simulate uses

"""Systolic-array engine: dense fold mapping (:mod:`.folds`), sparse modes (:mod:`.sparse`) and
the engine (:mod:`.engine`). A loop-nest mapper can sit beside :mod:`.folds`."""
from .engine import SystolicEngine, topology_row
from .folds import FoldPlan, GemmLowering, fold_plan, sram_word_accesses

__all__ = ["SystolicEngine", "topology_row", "FoldPlan", "GemmLowering", "fold_plan", "sram_word_accesses"]

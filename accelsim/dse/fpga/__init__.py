"""FPGA design-space optimisation: integer programs over the FPGA engine's cost model
(:mod:`.ilp`) and the ``accelsim fpga-fit`` / ``fpga-optimize`` commands (:mod:`.cli`)."""

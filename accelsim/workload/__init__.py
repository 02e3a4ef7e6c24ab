"""The workload IR: layers with compression records, and their readers/writers."""
from .compression import Compression, DynamicPrecision, Factorization, Quant, Sparsity
from .io import dump_workload_yaml, load_workload, read_scalesim_topology, save_workload, workload_from_dict, workload_to_dict
from .layer import Conv2d, ConvGeometry, Elementwise, Gemm, Layer, LayerBase, Linear, Matmul, Pool, Recurrent
from .workload import Workload

__all__ = [
    "Compression", "DynamicPrecision", "Factorization", "Quant", "Sparsity", "Conv2d", "ConvGeometry", "Elementwise", "Gemm",
    "Layer", "LayerBase", "Linear", "Matmul", "Pool", "Recurrent", "Workload", "load_workload",
    "save_workload", "read_scalesim_topology", "workload_from_dict", "workload_to_dict", "dump_workload_yaml",
]

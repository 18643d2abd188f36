"""Post-training compression of a trained student: int8 quantization (PTQ, QAT), magnitude pruning, ONNX export."""

from kdlab.post.onnx_export import check_onnx, export_onnx
from kdlab.post.prune import apply_pruning, global_magnitude_prune, make_pruning_permanent, weight_sparsity
from kdlab.post.quantize import (
    convert_qat,
    fake_quantizers,
    int8_kernels,
    prepare_qat,
    quantization_mode,
    quantize_int8,
    simulation_gap,
    weight_codes,
)

__all__ = [
    "apply_pruning",
    "check_onnx",
    "convert_qat",
    "export_onnx",
    "fake_quantizers",
    "global_magnitude_prune",
    "int8_kernels",
    "make_pruning_permanent",
    "prepare_qat",
    "quantization_mode",
    "quantize_int8",
    "simulation_gap",
    "weight_codes",
    "weight_sparsity",
]

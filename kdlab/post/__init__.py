"""Post-training compression of a trained student: int8 quantization, magnitude pruning, ONNX export."""

from kdlab.post.onnx_export import check_onnx, export_onnx
from kdlab.post.prune import apply_pruning, global_magnitude_prune, make_pruning_permanent, weight_sparsity
from kdlab.post.quantize import quantization_mode, quantize_int8

__all__ = [
    "apply_pruning",
    "check_onnx",
    "export_onnx",
    "global_magnitude_prune",
    "make_pruning_permanent",
    "quantization_mode",
    "quantize_int8",
    "weight_sparsity",
]

"""int8 quantization for CPU inference with torchao's PT2E flow (the successor of the deprecated FX flow).

One path for post-training (PTQ) and quantization-aware (QAT) int8: ``torch.export`` captures the model with a dynamic
batch dimension, torchao's ``X86InductorQuantizer`` annotates it (per-channel symmetric int8 weights, per-tensor
affine uint8 activations: the oneDNN recipe), ``prepare_pt2e`` inserts observers (``prepare_qat_pt2e``: fake-quant
modules, so training sees the rounding; Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", arXiv:1712.05877: ``x̂ = s·(clamp(round(x/s) + z, q_min, q_max) − z)``),
``convert_pt2e`` folds the weights to int8, and the q/dq patterns are lowered to oneDNN's int8 convolution and
linear kernels (``onednn.qconv_pointwise`` …) so the result runs, and is timed, as real int8 in eager mode.

``weight_bits`` < 8 narrows the weights' integer range to ``[-2^(b-1), 2^(b-1) - 1]`` per channel (W4A8 at 4): still
int8 tensors on int8 kernels, so size and speed are int8's, but only ``2^b`` levels per channel — the low-bit regime
where post-training rounding costs accuracy and training with the rounding in the loop earns it back.

torchao is imported on first use: it takes seconds and logs a torch deprecation line that a run without
``post.quantize`` should not pay for.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from types import SimpleNamespace
from typing import Literal

import torch
from torch import Tensor, nn
from torch.fx import GraphModule

from kdlab.errors import ConfigError
from kdlab.measure.size import SHIPPED_BYTES, graph_tensor_bytes, graph_tensors

Int8Mode = Literal["ptq", "qat"]
MODE_ATTRIBUTE = "kdlab_int8_mode"
WEIGHT_EPS = 2**-12  # the x86 recipe's smallest scale
SIMULATION_GAP_ATTRIBUTE = "kdlab_qat_simulation_gap"
WEIGHT_CODES_ATTRIBUTE = "kdlab_int8_weight_codes"  # (min, max) integer code of the converted weights
INSTALL_HINT = "pip install 'kdlab[quant]'"
_PYTREE_LOGGER = "torch.utils._pytree"  # torchao's import registers an Enum with torch, which logs a deprecation


def quantize_int8(
    model: nn.Module,
    calibration_batches: Iterable[Mapping[str, Tensor]],
    *,
    max_calibration_batches: int = 16,
    weight_bits: int = 8,
) -> nn.Module:
    """Static int8 copy of ``model`` (PTQ) on CPU in eval mode, activation ranges calibrated on at most
    ``max_calibration_batches`` ``{"image": …}`` batches, weights on ``weight_bits`` bits. Raises
    :class:`ConfigError` when it cannot be quantized."""
    batches = [batch["image"].cpu() for batch in islice(calibration_batches, max_calibration_batches)]
    if not batches:
        raise ConfigError("int8 quantization got no calibration batches to measure activation ranges")
    pt2e = _pt2e()
    exported = export_for_quantization(copy.deepcopy(model).cpu().eval(), batches[0])
    prepared = pt2e.prepare_pt2e(exported, _quantizer(is_qat=False, weight_bits=weight_bits))
    with torch.no_grad():
        for images in batches:
            prepared(images)
    return _lowered(pt2e.convert_pt2e(prepared), batches[0], "ptq")


def prepare_qat(model: nn.Module, example: Tensor, weight_bits: int = 8) -> GraphModule:
    """A fake-quantized copy of ``model`` in train mode, to fine-tune; ``convert_qat`` turns it into int8.

    Its ``train()``/``eval()`` switch batch norm and dropout in the captured graph, so a Lightning loop can drive it.
    """
    pt2e = _pt2e()
    exported = export_for_quantization(copy.deepcopy(model).cpu().train(), example.cpu())
    prepared = pt2e.prepare_qat_pt2e(exported, _quantizer(is_qat=True, weight_bits=weight_bits))
    pt2e.allow_exported_model_train_eval(prepared)
    return prepared


def convert_qat(prepared: GraphModule, example: Tensor) -> nn.Module:
    """The int8 model of a QAT-trained ``prepare_qat`` graph: scales frozen, weights folded, int8 kernels.

    It carries :func:`simulation_gap` on ``example``: how far its logits are from the fake-quantized model's, the
    evidence that the int8 model is the model QAT trained (``convert_pt2e`` may rewrite ``prepared``: simulated first).
    """
    pt2e = _pt2e()
    prepared, example = prepared.cpu(), example.cpu()
    pt2e.move_exported_model_to_eval(prepared)
    for quantizer in fake_quantizers(prepared):
        quantizer.disable_observer()  # the scales are final: the int8 model is rounded with these
    with torch.no_grad():
        simulated = prepared(example)
        int8 = _lowered(pt2e.convert_pt2e(prepared), example, "qat")
        shipped = int8(example)
    gap = (simulated - shipped).abs().mean() / shipped.abs().mean().clamp_min(1e-12)
    setattr(int8, SIMULATION_GAP_ATTRIBUTE, float(gap))
    return int8


def simulation_gap(model: nn.Module) -> float | None:
    """Mean |int8 − fake-quantized| logit over mean |int8| logit for a model made by :func:`convert_qat`, else None."""
    return getattr(model, SIMULATION_GAP_ATTRIBUTE, None)


def fake_quantizers(model: nn.Module) -> list[nn.Module]:
    """The fake-quant modules ``prepare_qat`` inserted (empty for any other model)."""
    base = _pt2e().FakeQuantizeBase
    return [module for module in model.modules() if isinstance(module, base)]


def quantization_mode(model: nn.Module) -> str | None:
    """'ptq' or 'qat' for a model made here, None otherwise."""
    return getattr(model, MODE_ATTRIBUTE, None)


def weight_codes(model: nn.Module) -> tuple[int, int] | None:
    """Smallest and largest integer code of the int8 weights of a model made here (None for any other model)."""
    return getattr(model, WEIGHT_CODES_ATTRIBUTE, None)


def weight_range(bits: int) -> tuple[int, int]:
    """The signed integer range of ``bits``-bit symmetric weights: (-8, 7) at 4."""
    if not 2 <= bits <= 8:
        raise ConfigError(f"weight bits must be an integer in [2, 8] (int8 kernels hold at most 8), got {bits!r}")
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def int8_kernels(model: nn.Module) -> list[str]:
    """Names of the oneDNN int8 ops the model's graph calls (``onednn.qconv_pointwise.default`` …)."""
    graph = getattr(model, "graph", None)
    if graph is None:
        return []
    return [str(node.target) for node in graph.nodes if node.op == "call_function" and "onednn.q" in str(node.target)]


def export_for_quantization(model: nn.Module, example: Tensor) -> GraphModule:
    """``torch.export`` of ``model`` with a dynamic batch (one graph serves batch 1 and 32) as an ``nn.Module``."""
    try:
        return torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch()).module()
    except Exception as exc:  # torch.export fails in many ways (data-dependent control flow, unsupported ops)
        name = type(model).__name__
        raise ConfigError(f"int8 quantization needs a model torch.export can capture; {name}: {exc}") from exc


def lower_to_onednn(converted: GraphModule, example: Tensor) -> GraphModule:
    """Replace the q/dq reference patterns of ``convert_pt2e`` with oneDNN int8 kernels, keeping the dynamic batch.

    torchao's ``lower_pt2e_quantized_to_x86`` does the same but exports with a fixed batch size; this is its recipe
    (inference-IR decomposition, ``aten.t`` → ``permute``, Inductor's freezing passes, constant folding).
    """
    from torch._inductor.constant_folding import constant_fold
    from torch._inductor.fx_passes.freezing_patterns import freezing_passes

    with torch.no_grad():
        program = torch.export.export(converted, (example,), dynamic_shapes=_dynamic_batch(), strict=True)
        lowered = program.run_decompositions(_composite_decompositions()).module()
        _transpose_as_permute(lowered)
        freezing_passes(lowered, (example,))
        constant_fold(lowered)
    _pt2e().allow_exported_model_train_eval(lowered)  # the report's helpers call eval(); it is a no-op here
    return lowered


def _composite_decompositions() -> dict:
    table = torch.export.default_decompositions()
    return {op: fn for op, fn in table.items() if torch._export.utils._is_cia_op(op)}


def _transpose_as_permute(module: GraphModule) -> None:
    graph = module.graph
    for node in list(graph.nodes):
        if node.target == torch.ops.aten.t.default:
            with graph.inserting_before(node):
                permute = graph.call_function(torch.ops.aten.permute.default, args=(node.args[0], [1, 0]))
            node.replace_all_uses_with(permute)
            graph.erase_node(node)
    graph.lint()
    module.recompile()


def _dynamic_batch() -> tuple[dict[int, object]]:
    return ({0: torch.export.Dim.DYNAMIC},)


def _quantizer(is_qat: bool, weight_bits: int = 8) -> object:
    """The oneDNN recipe, its per-channel weight range narrowed to ``weight_bits``.

    For QAT the weights' fake-quantizer is torchao's plain ``FakeQuantize`` instead of the recipe's fused one. The
    fused kernel computes its own symmetric per-channel scale, not the observer's ``max|w| / ((q_max − q_min)/2)``
    that ``convert_pt2e`` quantizes with (at 4 bits, measured: 7.5/7, 15/16 and 1/2 of it on three channels), so
    training fitted the weights to one grid and the int8 model was rounded onto another: 31 % relative logit error
    between the trained simulation and the int8 model on ``test_resnet``, and on the default student 98.6 % for the
    simulation against 95.0 % shipped. ``FakeQuantize`` trains with the observer's scale: the two agree to 1e-7.
    """
    x86 = importlib.import_module("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")
    config = x86.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    low, high = weight_range(weight_bits)
    weight = dataclasses.replace(config.weight, quant_min=low, quant_max=high)
    if is_qat:
        pt2e = importlib.import_module("torchao.quantization.pt2e")
        observer = pt2e.MovingAveragePerChannelMinMaxObserver
        fake_quant = pt2e.FakeQuantize.with_args(observer=observer, eps=WEIGHT_EPS)
        weight = dataclasses.replace(weight, observer_or_fake_quant_ctr=fake_quant)
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(dataclasses.replace(config, weight=weight))
    return quantizer


def _pt2e() -> SimpleNamespace:
    """The torchao PT2E functions used here."""
    try:
        with _quiet_logger(_PYTREE_LOGGER):
            pt2e = importlib.import_module("torchao.quantization.pt2e")
            flow = importlib.import_module("torchao.quantization.pt2e.quantize_pt2e")
    except ImportError as exc:
        raise ConfigError(f"int8 quantization needs the 'torchao' package: {INSTALL_HINT}") from exc
    names = ("allow_exported_model_train_eval", "move_exported_model_to_eval", "FakeQuantizeBase")
    return SimpleNamespace(
        **{name: getattr(pt2e, name) for name in names},
        **{name: getattr(flow, name) for name in ("prepare_pt2e", "prepare_qat_pt2e", "convert_pt2e")},
    )


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _lowered(converted: GraphModule, example: Tensor, mode: Int8Mode) -> nn.Module:
    """``converted`` on oneDNN kernels, tagged with its mode and the size of the int8 model before packing."""
    shipped = graph_tensor_bytes(converted)
    codes = _int8_codes(converted)
    lowered = _tag(lower_to_onednn(converted, example), mode)
    setattr(lowered, SHIPPED_BYTES, shipped)
    setattr(lowered, WEIGHT_CODES_ATTRIBUTE, codes)
    return lowered


def _int8_codes(converted: GraphModule) -> tuple[int, int] | None:
    """(min, max) over the int8 constants ``convert_pt2e`` folded the weights into."""
    codes = [value for value in graph_tensors(converted).values() if value.dtype == torch.int8]
    if not codes:
        return None
    return min(int(c.min()) for c in codes), max(int(c.max()) for c in codes)


def _tag(model: nn.Module, mode: Int8Mode) -> nn.Module:
    setattr(model, MODE_ATTRIBUTE, mode)
    return model

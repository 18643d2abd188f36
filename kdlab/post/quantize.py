"""Post-training int8 quantization for CPU inference, with PyTorch's own ``torch.ao.quantization``.

``torch.ao.quantization`` has been deprecated in favour of torchao since torch 2.10 but is still shipped and working
in torch 2.14; torchao is not a kdlab dependency, so this module uses the built-in tooling and silences its
deprecation warnings. Two modes:

- static (FX graph mode PTQ): every conv and linear runs in int8 with activation ranges calibrated on real batches.
  Needs a model ``torch.fx`` can trace: timm CNNs (resnets, mobilenetv3) trace; models with data-dependent
  Python control flow (e.g. timm ViTs) do not.
- dynamic: ``nn.Linear`` weights in int8, activations quantized on the fly. Works on any model but shrinks only the
  linear layers, which in a CNN is just the classifier.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import Literal

import torch
import torch.ao.nn.quantized.dynamic as nnqd
from timm.layers import Linear as TimmLinear
from torch import Tensor, nn
from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from kdlab.errors import ConfigError

QuantMode = Literal["auto", "dynamic", "static"]
MODE_ATTRIBUTE = "kdlab_int8_mode"
_LOG = logging.getLogger(__name__)


def quantize_int8(
    model: nn.Module,
    calibration_batches: Iterable[Mapping[str, Tensor]] | None = None,
    mode: QuantMode = "auto",
    *,
    max_calibration_batches: int = 16,
    backend: str | None = None,
) -> nn.Module:
    """An int8 copy of ``model`` on CPU, in eval mode; ``quantization_mode(result)`` says which mode was used.

    ``auto`` tries static quantization when calibration batches (``{"image": …}`` dicts, at most
    ``max_calibration_batches`` used) are given and falls back to dynamic, with a logged reason, when the model does
    not trace or its int8 graph does not run. ``backend`` is the quantized engine (default: the current
    ``torch.backends.quantized.engine``, ``x86`` on Intel/AMD).
    """
    if mode not in ("auto", "dynamic", "static"):
        raise ConfigError(f"int8 quantization mode must be 'auto', 'dynamic' or 'static', got '{mode}'")
    if mode == "static" and calibration_batches is None:
        raise ConfigError("static int8 quantization needs calibration batches to measure activation ranges")
    float_model = copy.deepcopy(model).cpu().eval()
    with _quiet_deprecations():
        if mode != "dynamic" and calibration_batches is not None:
            batches = list(islice(calibration_batches, max_calibration_batches))
            try:
                engine = backend or torch.backends.quantized.engine
                return _tag(_static(copy.deepcopy(float_model), batches, engine), "static")
            except Exception as exc:  # FX tracing and int8 kernels fail in many ways; all mean "not static"
                if mode == "static":
                    raise ConfigError(f"static int8 quantization failed: {exc}; use mode 'dynamic' or 'auto'") from exc
                _LOG.warning("static int8 quantization failed (%s); falling back to dynamic", exc)
        return _tag(_dynamic(float_model), "dynamic")


def quantization_mode(model: nn.Module) -> str | None:
    """'static' or 'dynamic' for a model made by ``quantize_int8``, None otherwise."""
    return getattr(model, MODE_ATTRIBUTE, None)


def _static(model: nn.Module, batches: list[Mapping[str, Tensor]], backend: str) -> nn.Module:
    if not batches:
        raise ConfigError("static int8 quantization got no calibration batches")
    example = batches[0]["image"].cpu()
    prepared = prepare_fx(model, get_default_qconfig_mapping(backend), example_inputs=(example,))
    with torch.no_grad():
        for batch in batches:
            prepared(batch["image"].cpu())
        quantized = convert_fx(prepared)
        quantized(example)  # a kernel missing for this engine fails here, not in the middle of a report
    return quantized


def _dynamic(model: nn.Module) -> nn.Module:
    _plain_linears(model)
    quantized = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    if not any(isinstance(m, nnqd.Linear) for m in quantized.modules()):
        _LOG.warning("dynamic int8 quantization found no nn.Linear layer: the model is unchanged")
    return quantized


def _plain_linears(model: nn.Module) -> None:
    """Swap timm's ``Linear`` (nn.Linear plus a TorchScript-only cast) for ``nn.Linear``: the dynamic quantizer
    matches exact types and would skip it, leaving e.g. every timm classifier in float."""
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is TimmLinear
    ]
    for parent, name, child in targets:
        plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None, device="meta")
        plain.weight, plain.bias = child.weight, child.bias
        setattr(parent, name, plain)


def _tag(model: nn.Module, mode: str) -> nn.Module:
    setattr(model, MODE_ATTRIBUTE, mode)
    return model


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in (
            "torch.ao.quantization is deprecated",
            "torch.quantize_per_tensor, torch.quantize_per_channel",
            "Please use quant_min and quant_max",
        ):
            warnings.filterwarnings("ignore", message=message)
        yield

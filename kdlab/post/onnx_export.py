"""ONNX export for deployment, and a numerical check of the exported graph against PyTorch.

The current exporter, ``torch.onnx.export(..., dynamo=True)``: ``torch.export`` captures the graph and ``onnxscript``
translates it (the TorchScript exporter is deprecated). ``onnx`` validates the file and ``onnxruntime`` runs it; all
three come with ``pip install 'kdlab[export]'``.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.measure.inference import evaluating, model_device

OPSET = 18  # the dynamo exporter's lowest well-supported opset
EXPORT_PACKAGES = ("onnx", "onnxscript")


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` (input ``image``, output ``logits``, dynamic batch) to ``path`` and return it.

    ``input_shape`` is one sample without the batch dimension. The graph is written, weights inline (one file), to a
    temporary file in the same folder, checked with ``onnx.checker``, then moved into place with ``os.replace``: a
    crash never leaves a half-written ``.onnx`` where a deployment would pick it up.
    """
    onnx, _ = (_require(package) for package in EXPORT_PACKAGES)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        x = torch.randn(2, *input_shape, device=model_device(model))  # batch 2: a batch of 1 would be specialised
        with evaluating(model), torch.no_grad():
            program = torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                verbose=False,
                opset_version=opset,
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
        program.save(tmp_name, external_data=False)
        onnx.checker.check_model(tmp_name)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def check_onnx(path: str | os.PathLike, model: nn.Module, inputs: Tensor) -> float:
    """Largest absolute difference between onnxruntime's (CPU) and PyTorch's logits on ``inputs``."""
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"image": inputs.detach().cpu().numpy()})
    with evaluating(model), torch.inference_mode():
        torch_logits = model(inputs.to(model_device(model))).cpu()
    return float((torch.from_numpy(onnx_logits) - torch_logits).abs().max())


def _require(package: str) -> ModuleType:
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(f"ONNX export needs the '{package}' package: pip install 'kdlab[export]'") from exc

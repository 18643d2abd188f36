"""ONNX export for deployment, and a numerical check of the exported graph against PyTorch.

torch 2.14's ``torch.onnx.export`` defaults to the dynamo exporter, which needs ``onnxscript`` (not a kdlab
dependency); the TorchScript exporter is still available behind ``dynamo=False`` and needs nothing beyond torch,
so it is used here (its deprecation warnings are silenced). ``onnx`` validates the file and ``onnxruntime`` runs it:
both come with ``pip install 'kdlab[export]'``.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

from kdlab.errors import ConfigError
from kdlab.measure.inference import evaluating, model_device

OPSET = 17


def export_onnx(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` (input ``image``, output ``logits``, dynamic batch) to ``path`` and return it.

    ``input_shape`` is one sample without the batch dimension. The graph is written to a temporary file in the same
    folder, checked with ``onnx.checker``, then moved into place with ``os.replace``: a crash never leaves a
    half-written ``.onnx`` where a deployment would pick it up.
    """
    onnx = _require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        x = torch.randn(1, *input_shape, device=model_device(model))
        with evaluating(model), torch.no_grad(), warnings.catch_warnings():
            for message in ("You are using the legacy TorchScript-based ONNX export", "The feature will be removed"):
                warnings.filterwarnings("ignore", message=message)  # the exporter's own deprecation notices
            torch.onnx.export(
                model,
                (x,),
                tmp_name,
                dynamo=False,
                opset_version=opset,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            )
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

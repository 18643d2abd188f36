"""kdlab: config-driven knowledge distillation on Hydra, PyTorch Lightning and timm."""

__version__ = "0.1.0"

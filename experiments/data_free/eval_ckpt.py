"""Test accuracy of a student checkpoint (Lightning last.ckpt) on the 10,000 MNIST test images."""

import sys

import torch

from kdlab.data.torchvision_sets import torchvision_data
from kdlab.models.lenet import LeNet5

ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
state = {k[len("student.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("student.")}
model = LeNet5(widths=(3, 8, 60, 42))
model.load_state_dict(state)
model.eval()
data = torchvision_data(
    "mnist", root="../shared/data/mnist", download=False, image_size=32, batch_size=1000, val_fraction=0.0833
)
correct = total = 0
with torch.no_grad():
    for batch in data.model_batches("test"):
        correct += int((model(batch["image"]).argmax(1) == batch["target"]).sum())
        total += len(batch["target"])
print(f"epoch {ckpt['epoch']} step {ckpt['global_step']}: test acc {correct / total:.4f} ({total} images)")

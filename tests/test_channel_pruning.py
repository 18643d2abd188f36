"""Channel pruning removes whole channels (parameters and MACs drop, the model still runs), and a pruned model survives
a ``weights_only`` round trip through its recorded structure."""

from __future__ import annotations

import io

import pytest
import timm
import torch

pytest.importorskip("torch_pruning")

from kdlab.errors import ConfigError
from kdlab.measure.macs import count_macs
from kdlab.post.channels import ChannelPruner, channel_prune, pruned_structure, restore_structure


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["test_resnet", "mobilenetv3_small_100"])
def test_half_the_channels_go_and_the_model_still_classifies(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, in_chans=1).eval()
    example = torch.randn(1, 1, 32, 32)
    params, macs = _params(model), count_macs(model, (1, 32, 32))
    channel_prune(model, example, 0.5)
    assert _params(model) < 0.35 * params  # half the channels on both sides of most weights: about a quarter left
    assert count_macs(model, (1, 32, 32)) < 0.5 * macs
    assert model.get_classifier().out_features == 10  # the class count is never pruned
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)


def test_a_pruned_model_round_trips_through_a_weights_only_checkpoint() -> None:
    model = timm.create_model("mobilenetv3_small_100", num_classes=10, in_chans=1).eval()
    channel_prune(model, torch.randn(1, 1, 32, 32), 0.5)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "structure": pruned_structure(model)}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    rebuilt = timm.create_model("mobilenetv3_small_100", num_classes=10, in_chans=1)
    restore_structure(rebuilt, saved["structure"], saved["state_dict"]).load_state_dict(saved["state_dict"])
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(rebuilt.eval()(x), model(x), atol=1e-5)


def test_a_structure_from_another_architecture_is_refused() -> None:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    with pytest.raises(ConfigError, match="pruned checkpoint has layers this model lacks"):
        restore_structure(model, {"blocks.99.conv": {"out_channels": 4}}, {})


def test_iterative_steps_prune_a_share_each() -> None:
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1).eval()
    pruner = ChannelPruner(model, torch.randn(1, 1, 32, 32), 0.5, steps=2)
    sizes = [_params(model)]
    for _ in range(2):
        pruner.step()
        sizes.append(_params(model))
    assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(RuntimeError, match="all 2 pruning steps are done"):
        pruner.step()


@pytest.mark.parametrize(("amount", "steps", "message"), [(1.0, 1, "post.prune must"), (0.5, 0, "post.prune_steps")])
def test_bad_amounts_and_steps_name_the_value(amount: float, steps: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ChannelPruner(timm.create_model("test_resnet", num_classes=10), torch.randn(1, 3, 32, 32), amount, steps)

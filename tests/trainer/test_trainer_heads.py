"""Every torchvision classifier the zoo can offer gets a new head for the dataset's classes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from trainer.models import build_torchvision, head_of, replace_last_linear

CLASSIFIERS = sorted(torchvision.models.list_models(module=torchvision.models))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_torchvision_classifier_gets_a_new_head(name):
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None)
    except NotImplementedError:  # RegNet computes its widths with tensors; its head is the same at every size
        assert name.startswith("regnet"), name
        model = torchvision.models.get_model(name.split("_")[0] + "_" + name.split("_")[1] + "_400mf", weights=None)
    head = replace_last_linear(model, 7)
    out_features = head.out_features if isinstance(head, nn.Linear) else head.out_channels
    assert out_features == 7
    assert any(module is head for module in model.modules())
    assert head_of(model, "classification") is head


def test_squeezenet_classifies_with_its_new_conv_head(tmp_path):
    weights = tmp_path / "squeezenet.pt"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), weights)
    built = build_torchvision("squeezenet1_1", 3, weights, 1000)
    assert isinstance(built.head, nn.Conv2d) and built.head.out_channels == 3
    assert built.model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)

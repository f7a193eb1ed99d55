"""The linear probe (trainer/probe.py): a head fitted on frozen features, folded back into the head's own
weights, with the L2 strength picked on the val features."""

from __future__ import annotations

import torch
from torch import nn

from trainer import probe


def _features(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 16, generator=g) * 3 + 10  # far from zero mean, unit-less scale: standardised inside
    x[torch.arange(n), y] += 12.0  # class k lifts feature k
    return x, y


def test_fit_head_learns_the_classes_and_folds_the_standardisation_back():
    head = nn.Linear(16, 3)
    train, val = _features(90, 0), _features(60, 1)
    l2 = probe.fit_head(head, train, val)
    assert l2 in probe.L2_GRID
    with torch.no_grad():
        accuracy = (head(val[0]).argmax(1) == val[1]).float().mean()
    assert accuracy >= 0.95  # on the raw features: the standardisation lives in the head's weights


def test_a_separable_val_set_does_not_pick_the_weakest_l2():
    head = nn.Linear(16, 3)
    x, y = _features(90, 0)
    x[torch.arange(90), y] += 100.0  # trivially separable: every L2 gets a val loss near zero
    probe.fit_head(head, (x, y), (x, y))
    assert head.weight.abs().max() < 5.0  # the strongest L2 that is as good, not huge overconfident weights


def test_head_inputs_are_what_the_head_sees():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2))
    loader = [(torch.randn(5, 3, 2, 2), torch.tensor([0, 1, 0, 1, 1]))]
    feats, labels = probe.head_inputs(net, net[3], loader, torch.device("cpu"))
    assert feats.shape == (5, 4) and labels.tolist() == [0, 1, 0, 1, 1] and (feats >= 0).all()

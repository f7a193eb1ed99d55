"""A linear probe in seconds: a classifier's head fitted on frozen features computed once.

The pre-trained network runs once over the train and val images (no augmentation) and the inputs of its
last linear layer are kept; a multinomial logistic regression is then fitted on them with L-BFGS (the L2
strength picked on the val features) and written into the head. Training the head by SGD over augmented
epochs would recompute the same features every epoch. As the first stage of probe-then-fine-tune (LP-FT,
Kumar et al. 2022) it also gives fine-tuning a head that already fits, so the first steps do not send
large random-head gradients into the pre-trained features.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# L2 strengths tried, per sample (the loss is a mean over the train features)
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
LBFGS_STEPS = 100


def can_probe(head: nn.Module) -> bool:
    return isinstance(head, nn.Linear)


@torch.no_grad()
def head_inputs(
    model: nn.Module, head: nn.Linear, loader, device: torch.device, channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the head sees for every image of the loader (eval mode), and the labels."""
    seen: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().float().cpu()))
    labels = []
    model.eval()
    try:
        for images, targets in loader:
            images = images.to(device, non_blocking=True)
            model(images.contiguous(memory_format=torch.channels_last) if channels_last else images)
            labels.append(torch.as_tensor(targets))
    finally:
        handle.remove()
    # clones: inference-mode tensors cannot enter the autograd graph of the fit
    return torch.cat(seen).flatten(1).clone(), torch.cat(labels).clone()


def _fit(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, weight: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(x.shape[1], classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=LBFGS_STEPS, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y, weight=weight) + 0.5 * l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def fit_head(
    head: nn.Linear,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    class_weights: list[float] | None = None,
) -> float:
    """Fit the head on standardised features (the L2 strength with the lowest val loss), folded back into
    the head's own weights; returns the chosen strength."""
    x, y = train
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs, vs = (x - mean) / std, (val[0] - mean) / std
    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    classes = head.out_features
    fits = []
    with torch.enable_grad():
        for l2 in L2_GRID:
            linear = _fit(xs, y, classes, l2, weight)
            with torch.no_grad():
                fits.append((float(F.cross_entropy(linear(vs), val[1])), l2, linear))
    # the strongest L2 whose val loss is close to the best: a separable val set would otherwise pick the
    # weakest and a head of huge, overconfident weights for fine-tuning to start from
    lowest = min(loss for loss, _, _ in fits)
    _, l2, linear = max((f for f in fits if f[0] <= lowest * 1.1 + 0.01), key=lambda f: f[1])
    with torch.no_grad():  # w.(x - m)/s + b = (w/s).x + (b - (w/s).m)
        w = linear.weight / std
        head.weight.copy_(w.to(head.weight.device, head.weight.dtype))
        if head.bias is not None:
            head.bias.copy_((linear.bias - w @ mean).to(head.bias.device, head.bias.dtype))
    return l2

"""LARS: SGD with momentum and a layer-wise trust ratio (You, Gitman & Ginsburg 2017), no apex.

For every weight tensor w with gradient g the step direction is scaled by the local learning rate

    trust = eta * |w| / (|g| + beta * |w|)        (eta: trust coefficient, beta: weight decay)

applied to g + beta * w; then plain SGD with momentum: buf = m * buf + d; w -= lr * buf.

Every parameter is adapted by default, as apex's LARC (which SwAV, and so the paper's code, used)
does. `exclude_bias_and_norm=True` gives the SimCLR/BYOL convention instead: tensors with ndim <= 1
(biases, norm scales) get neither adaptation nor weight decay. With the paper's lr = 0.01 and trust
coefficient 0.01 that convention moves f_theta's bias ~100x faster than its weights, and the codes
collapse (every pixel's z points the same way; docs/architecture.md gives the figures), so it is off.
A param group may also set `lars_exclude=True`.
"""

from __future__ import annotations

from typing import Iterable

import torch


class LARS(torch.optim.Optimizer):
    """SGD + momentum with layer-wise adaptive rate scaling (section 6.2.3: lr 0.01, momentum 0.9)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.01,
        exclude_bias_and_norm: bool = False,
        eps: float = 1e-8,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient,
            exclude_bias_and_norm=exclude_bias_and_norm, eps=eps,
        )
        super().__init__(params, defaults)

    @staticmethod
    def trust_ratio(w: torch.Tensor, g: torch.Tensor, coefficient: float, weight_decay: float, eps: float) -> torch.Tensor:
        """eta * |w| / (|g| + beta * |w| + eps); 1 where |w| or |g| is zero."""
        w_norm, g_norm = torch.linalg.vector_norm(w), torch.linalg.vector_norm(g)
        ratio = coefficient * w_norm / (g_norm + weight_decay * w_norm + eps)
        return torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim signature
        """One LARS update of every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if not (group.get("lars_exclude", False) or (group["exclude_bias_and_norm"] and p.ndim <= 1)):
                    wd = group["weight_decay"]
                    trust = self.trust_ratio(p, d, group["trust_coefficient"], wd, group["eps"])
                    d = (d + wd * p) * trust
                state = self.state[p]
                if group["momentum"] > 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.zeros_like(p)
                    d = buf.mul_(group["momentum"]).add_(d)
                p.add_(d, alpha=-group["lr"])
        return loss

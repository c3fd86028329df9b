"""Plain gradient descent, the paper's optimiser (A.1) and the project's default.

``GD(params, lr)`` does ``p <- p - lr * grad`` per parameter group: the arithmetic of
``torch.optim.SGD`` without momentum, dampening, weight decay or Nesterov (tested equal, bit for
bit). It exists because constructing any ``torch.optim`` optimiser imports ``torch._dynamo``
(about 2 s of CPU, once per process), and every workflow run is its own process: that import was
~7% of the quick profile's CPU time. It keeps the parts of the optimiser protocol the trainer and
the cluster callbacks use: ``param_groups``, ``state`` (always empty: GD keeps no moments),
``zero_grad``, ``step``, ``state_dict`` / ``load_state_dict``.
"""
from __future__ import annotations

from typing import Iterable

import torch


class GD:
    def __init__(self, params: Iterable, lr: float):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        if lr <= 0:
            raise ValueError(f"GD learning rate must be > 0, got {lr}")
        self.defaults = {"lr": lr}
        self.param_groups = [{**g, "params": list(g["params"]), "lr": g.get("lr", lr)} for g in groups]
        self.state: dict = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-g["lr"])

    def state_dict(self) -> dict:
        return {"state": {}, "param_groups": [{"lr": g["lr"]} for g in self.param_groups]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["param_groups"]) != len(self.param_groups):
            raise ValueError(f"GD state has {len(state['param_groups'])} parameter groups, "
                             f"this optimiser {len(self.param_groups)}")
        for g, s in zip(self.param_groups, state["param_groups"]):
            g["lr"] = s["lr"]

    def __repr__(self) -> str:
        return f"GD(lr={[g['lr'] for g in self.param_groups]})"

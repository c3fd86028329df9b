"""Building blocks shared by the deep interaction models (DIN, DeepFM).

* :func:`mlp` — the prediction tower of Appendix A.1: hidden layers of 16 and 8 units ("following
  the common heuristic"), then one linear output. The first layer is a ``LazyLinear``: the
  models are built before the embedding dimension R is known (the run driver calls
  ``MODELS[name](nonneg=...)``), and the input width is read from the first batch.
* :func:`masked_mean` — mean of a padded set of vectors over its real slots.
* :func:`check_nonneg` — the run driver builds every model as ``MODELS[name](nonneg=...)``;
  deep models accept the argument and apply no constraint (nonnegativity is NMF's, D.1).

Lazy parameters are materialised in place (the same ``Parameter`` object), so an optimiser
built before the first forward pass — as :class:`cel.train.trainer.Trainer` builds it — updates
them; their initialisation draws from the global torch RNG at that first call, hence a fixed
seed gives identical models.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

#: hidden units of the deep models' MLP (Appendix A.1)
HIDDEN = (16, 8)
#: values of the run driver's ``models.<name>.nonneg`` (NMF applies them; deep models ignore them)
NONNEG = ("abs", "clamp", "none")


def check_nonneg(value: str) -> None:
    """Validate a ``nonneg`` argument that the model then ignores (no constraint: ``constrain_``
    stays the interface's no-op)."""
    if value not in NONNEG:
        raise ValueError(f"nonneg must be {'|'.join(NONNEG)}, got {value!r}")


def mlp(hidden: tuple[int, ...] = HIDDEN, activation: Callable[[int], nn.Module] = nn.PReLU,
        out: int = 1) -> nn.Sequential:
    """(B, input) -> (B, out): Linear → activation for each hidden width, then a linear output.
    ``activation(width)`` builds the activation of one layer (e.g. ``nn.PReLU`` with one slope per
    unit, or ``lambda _: nn.ReLU()``). The input width is inferred at the first call."""
    layers: list[nn.Module] = []
    for k, width in enumerate(hidden):
        layers += [nn.LazyLinear(width) if k == 0 else nn.Linear(hidden[k - 1], width), activation(width)]
    layers.append(nn.Linear(hidden[-1], out) if hidden else nn.LazyLinear(out))
    return nn.Sequential(*layers)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, F, R) values, (B, F) bool mask -> (B, R) mean over the real slots (0 when there is none).
    Padded slots contribute exactly zero, to the value and to every gradient."""
    m = mask.to(values.dtype).unsqueeze(-1)                      # (B, F, 1)
    return (values * m).sum(-2) / m.sum(-2).clamp_min(1.0)


def tower_over_candidates(tower: nn.Sequential, own: int, other: int, cand: torch.Tensor,
                          others: torch.Tensor) -> torch.Tensor | None:
    """(E, C, n) outputs of ``tower`` on inputs that are zero except the R-wide slot ``own``
    (candidate c, ``cand`` (E, C, R)) and slot ``other`` (``others`` (E, n, R)), without building
    the (E, C, n, F·R) inputs: the first layer splits as W_c c + W_o o + b (each side once), and
    only the hidden layers run per (entity, candidate, interaction). None while the first layer
    is still lazy (no batch seen)."""
    first = tower[0]
    if isinstance(first, nn.modules.lazy.LazyModuleMixin) and first.has_uninitialized_params():
        return None
    R = cand.shape[-1]
    w, b = first.weight, first.bias                                               # (H, F·R), (H,)
    hc = cand @ w[:, own * R:(own + 1) * R].T                                     # (E, C, H)
    ho = others @ w[:, other * R:(other + 1) * R].T                               # (E, n, H)
    h = hc[:, :, None, :] + ho[:, None, :, :] + b                                 # (E, C, n, H)
    E, C, n, H = h.shape
    return tower[1:](h.reshape(-1, H)).reshape(E, C, n)


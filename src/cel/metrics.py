"""Evaluation metrics: rating prediction (MSE, MAE; per-bucket MSE by entity interaction count) and
conversion prediction (AUC with ties counted one half, logloss on logits)."""
from __future__ import annotations

import numpy as np
import torch


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error, the paper's test metric for rating prediction."""
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.numel() == 0:
        raise ValueError("mse of an empty set")
    return float((pred.double() - target.double()).pow(2).mean())


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error."""
    _check(pred, target)
    return float((pred.double() - target.double()).abs().mean())


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"shape mismatch {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.numel() == 0:
        raise ValueError("metric of an empty set")


def auc(score: torch.Tensor, label: torch.Tensor) -> float:
    """AUC = P(s+ > s-) + 1/2 P(s+ = s-) over all (positive, negative) pairs, by ranks: the
    Mann-Whitney U statistic with tied scores given their average rank. O(D log D)."""
    _check(score, label)
    s = score.detach().double().numpy()
    y = label.detach().numpy() > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average rank (1-based) of each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def logloss(logit: torch.Tensor, label: torch.Tensor) -> float:
    """Mean binary cross-entropy of predicted logits."""
    _check(logit, label)
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logit.double(), label.double()))


def bucket_mse(pred: np.ndarray, target: np.ndarray, counts: np.ndarray, edges: list[int]) -> dict[str, float]:
    """MSE per bucket of the entity's training interaction count (Figure 4): [e_k, e_{k+1})."""
    out = {}
    err = (np.asarray(pred, dtype=np.float64) - target) ** 2
    bounds = list(edges) + [np.inf]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        m = (counts >= lo) & (counts < hi)
        if m.any():
            out[f"{lo}-{'inf' if hi == np.inf else int(hi)}"] = float(err[m].mean())
    return out


def adjusted_rand_index(a, b) -> float:
    """Adjusted Rand index of two labelings (Hubert & Arabie 1985); 1 = identical partitions."""
    a, b = np.asarray(a), np.asarray(b)
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), dtype=np.int64)
    np.add.at(table, (ai, bi), 1)

    def comb2(x):
        return (x * (x - 1) / 2.0).sum()

    sum_ij, sum_a, sum_b = comb2(table), comb2(table.sum(1)), comb2(table.sum(0))
    expected = sum_a * sum_b / comb2(np.array([len(a)]))
    max_index = (sum_a + sum_b) / 2.0
    if max_index == expected:
        return 1.0
    return float((sum_ij - expected) / (max_index - expected))

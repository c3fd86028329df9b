"""Tasks: what is predicted, how it is trained and scored, and which direction is better.

* ``regression`` (rating prediction, Section 4.1.1): squared error, Eq. (1); reports MSE, RMSE, MAE.
* ``conversion`` (Section 4.1.2): label = rating >= threshold (4 on Amazon and MovieLens),
  binary cross-entropy on logits; reports AUC and logloss. AUC = P(s+ > s-) + 1/2 P(s+ = s-)
  (the paper's 4.1.2 states the inequality reversed, a typo).

A task never assumes "lower is better": tables, step selection and tuning ask
:func:`higher_is_better` (or ``Task.better``) for every metric.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from cel.errors import ConfigError
from cel.metrics import auc, logloss, mae, mse

#: direction of every metric a task reports (True = higher is better)
HIGHER_IS_BETTER: dict[str, bool] = {"mse": False, "rmse": False, "mae": False, "auc": True, "logloss": False}


def higher_is_better(metric: str) -> bool:
    """Direction of ``metric``; a prefix such as ``test_`` or ``val_`` is ignored."""
    name = metric.split("_", 1)[1] if metric.split("_", 1)[0] in ("test", "val", "train", "progressive") else metric
    if name not in HIGHER_IS_BETTER:
        raise KeyError(f"no known direction for metric {metric!r} (known: {', '.join(HIGHER_IS_BETTER)})")
    return HIGHER_IS_BETTER[name]


@dataclass(frozen=True)
class Task:
    """Base task. ``loss_terms`` is elementwise (summed by the trainer, Eq. 1 is a sum)."""

    kind: ClassVar[str] = ""
    primary: ClassVar[str] = ""          # the metric validation selects on
    threshold: float = 4.0               # conversion label: rating >= threshold

    def labels(self, ratings: torch.Tensor) -> torch.Tensor:
        """(D,) training targets from raw ratings."""
        return ratings.to(torch.float32)

    def loss_terms(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def running(self) -> "RunningScore":
        """An accumulator of a stream's predictions whose ``value()`` equals ``metrics`` over
        everything added. The default keeps every prediction (AUC needs them all)."""
        return KeptScore(self)

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.primary)

    def better(self, a: float, b: float) -> bool:
        """True when primary-metric value ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def worst(self) -> float:
        return float("-inf") if self.higher_is_better else float("inf")

    @property
    def squared_error(self) -> bool:
        """True when the loss is Σ (x - y)², which allows the exact dot-product reassignment path."""
        return False


class RunningScore:
    """A task's score over a growing stream of (prediction, label) batches; ``every``: how many
    steps apart the trainer asks for ``value()`` (1 where it costs O(1))."""

    n: int = 0
    every: int = 10          # steps between progressive scores when each costs O(seen)

    def add(self, pred: torch.Tensor, y: torch.Tensor) -> None:
        raise NotImplementedError

    def value(self) -> dict[str, float]:
        raise NotImplementedError


class KeptScore(RunningScore):
    """Keeps every prediction; ``value()`` is O(n) (called every few steps and at the end)."""

    def __init__(self, task: Task):
        self.task, self.pred, self.y, self.n = task, [], [], 0

    def add(self, pred, y):
        self.pred.append(pred)
        self.y.append(y)
        self.n += len(pred)

    def value(self):
        self.pred, self.y = [torch.cat(self.pred)], [torch.cat(self.y)]     # one tensor, not one per batch
        return self.task.metrics(self.pred[0], self.y[0])


class ErrorSums(RunningScore):
    """Squared and absolute error sums in float64: O(batch) per batch and O(1) per ``value()``,
    where keeping every prediction of a multi-pass replay stream (millions) cost O(seen) per score,
    so the progressive MSE is recorded after every step."""

    every = 1

    def __init__(self):
        self.sse, self.sae, self.n = 0.0, 0.0, 0

    def add(self, pred, y):
        err = pred.double() - y.double()
        self.sse += float(err.pow(2).sum())
        self.sae += float(err.abs().sum())
        self.n += len(pred)

    def value(self):
        if self.n == 0:
            raise ValueError("mse of an empty set")
        m = self.sse / self.n
        return {"mse": m, "rmse": m ** 0.5, "mae": self.sae / self.n}


@dataclass(frozen=True)
class Regression(Task):
    kind: ClassVar[str] = "regression"
    primary: ClassVar[str] = "mse"

    def loss_terms(self, pred, y):
        return (pred - y).pow(2)

    def metrics(self, pred, y):
        m = mse(pred, y)
        return {"mse": m, "rmse": m ** 0.5, "mae": mae(pred, y)}

    def running(self) -> RunningScore:
        return ErrorSums()

    @property
    def squared_error(self) -> bool:
        return True


@dataclass(frozen=True)
class Conversion(Task):
    kind: ClassVar[str] = "conversion"
    primary: ClassVar[str] = "auc"

    def labels(self, ratings):
        return (ratings >= self.threshold).to(torch.float32)

    def loss_terms(self, pred, y):
        return F.binary_cross_entropy_with_logits(pred, y, reduction="none")

    def metrics(self, pred, y):
        return {"auc": auc(pred, y), "logloss": logloss(pred, y)}


TASKS: dict[str, type[Task]] = {"regression": Regression, "conversion": Conversion}


def make_task(kind: str, **params) -> Task:
    if kind not in TASKS:
        raise ConfigError(f"config invalid value at 'tasks.*.kind': {kind!r} (known: {', '.join(TASKS)})")
    return TASKS[kind](**params)

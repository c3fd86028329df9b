"""One generic full-batch trainer with named callback events (minGPT-style ``trigger``).

Loss (per step, full batch):  L = Σ_(u,i) observed (x_ui - y(A_u, B_i))²          Eq. (1)
                                 + λ_reg / 2 · Σ_p ||p||²_F  over embedding params   Eq. (8)

Events: ``on_fit_start``, ``on_after_backward`` (gradients are there: gradient averaging,
GPCA gradient capture), ``on_step_end`` (after the optimiser step and the model constraint:
the CEL cluster schedule), ``on_eval``, ``on_fit_end``. Callbacks run under ``torch.no_grad()``.
"""
from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from cel.config import TrainConfig
from cel.embeddings.base import EmbeddingMethod, test_time
from cel.models.base import InteractionModel, PairScorer
from cel.models.pairs import PairIndex

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "gd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}


class Callback:
    """Base class: override the events you need."""

    def on_fit_start(self, trainer: "FullBatchTrainer") -> None: ...
    def on_after_backward(self, trainer: "FullBatchTrainer") -> None: ...
    def on_step_end(self, trainer: "FullBatchTrainer") -> None: ...
    def on_eval(self, trainer: "FullBatchTrainer", metrics: dict) -> None: ...
    def on_fit_end(self, trainer: "FullBatchTrainer") -> None: ...

    def ready(self, trainer: "FullBatchTrainer") -> bool:
        """False while the callback's schedule must run on (no early stop, no step selection)."""
        return True


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_mse: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    step_seconds: float = 0.0


def score(model: InteractionModel, user_emb: EmbeddingMethod, item_emb: EmbeddingMethod,
          pairs: PairIndex) -> torch.Tensor:
    """(D,) predictions for all pairs: exact sparse fast path for dot-product models."""
    if isinstance(model, PairScorer):
        return model.score_pairs(user_emb.table(), item_emb.table(), pairs)
    return model(user_emb(pairs.users), item_emb(pairs.items))


class FullBatchTrainer:
    def __init__(self, model: InteractionModel, user_emb: EmbeddingMethod, item_emb: EmbeddingMethod,
                 pairs: PairIndex, ratings: torch.Tensor, cfg: TrainConfig, reg: float,
                 evaluate: Callable[[], dict] | None = None, callbacks: list[Callback] | None = None,
                 log: Callable[[str], None] | None = None):
        self.model, self.user_emb, self.item_emb = model, user_emb, item_emb
        self.pairs, self.ratings, self.cfg, self.reg = pairs, ratings, cfg, reg
        self.evaluate = evaluate
        self.callbacks = list(callbacks or [])
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.step = 0
        self.history = History()
        self.best_val, self.best_step, self.best_state, self._stale = float("inf"), 0, None, 0
        self.optimizer = self.build_optimizer()

    # -- pieces a callback may call ------------------------------------------------------
    def build_optimizer(self) -> list[torch.optim.Optimizer]:
        """Optimisers per parameter group (Tables 13-14 vary the user side separately): the user
        group takes ``user_optimizer``/``user_lr`` when set, the item group (and the model's own
        parameters) ``optimizer``/``lr``. Rebuilt by callbacks that add parameters."""
        cfg = self.cfg
        groups = {
            (cfg.user_optimizer or cfg.optimizer, cfg.user_lr or cfg.lr): list(self.user_emb.parameters()),
        }
        item_key = (cfg.optimizer, cfg.lr)
        groups.setdefault(item_key, [])
        groups[item_key] = groups[item_key] + [p for m in (self.item_emb, self.model) for p in m.parameters()]
        by_opt: dict[str, list[dict]] = {}
        for (name, lr), params in groups.items():
            if params:
                by_opt.setdefault(name, []).append({"params": params, "lr": lr})
        return [OPTIMIZERS[name](pg, lr=pg[0]["lr"]) for name, pg in by_opt.items()]

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return self.optimizer

    def constrain(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            for p in emb.embedding_parameters():
                self.model.constrain_(p.data)

    def losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, sum of squared errors) of the current parameters on the training pairs."""
        pred = score(self.model, self.user_emb, self.item_emb, self.pairs)
        sse = (pred - self.ratings).pow(2).sum()
        reg = sum(p.pow(2).sum() for m in (self.user_emb, self.item_emb) for p in m.embedding_parameters())
        total = sse + 0.5 * self.reg * reg
        for emb in (self.user_emb, self.item_emb):
            pen = emb.penalty()
            if pen is not None:
                total = total + pen
        return total, sse

    def trigger(self, event: str, *args) -> None:
        with torch.no_grad():
            for cb in self.callbacks:
                getattr(cb, event)(self, *args)

    def run_eval(self) -> dict:
        if self.evaluate is None:
            return {}
        with torch.no_grad(), test_time(self.user_emb, self.item_emb):   # what is stored at test time
            metrics = self.evaluate()
        self.history.eval_step.append(self.step)
        self.history.eval.append(metrics)
        self.trigger("on_eval", metrics)
        return metrics

    # -- the loop ---------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One full-batch step of embedding optimisation: loss, backward, callbacks, update,
        constraint. Returns (total loss, sum of squared errors) before the update."""
        for opt in self.optimizer:
            opt.zero_grad(set_to_none=True)
        loss, sse = self.losses()
        loss.backward()
        self.trigger("on_after_backward")
        for opt in self.optimizer:
            opt.step()
        with torch.no_grad():
            self.constrain()
        return loss.detach(), sse.detach()

    def fit(self) -> History:
        cfg, n = self.cfg, len(self.pairs)
        self.constrain()
        self.trigger("on_fit_start")
        t_steps, t0 = 0.0, time.perf_counter()
        last = {}
        for self.step in range(1, cfg.steps + 1):
            ts = time.perf_counter()
            loss, sse = self.train_step()
            t_steps += time.perf_counter() - ts
            self.history.step.append(self.step)
            self.history.loss.append(loss.item())
            self.history.train_mse.append(sse.item() / n)
            self.trigger("on_step_end")
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {self.step}: lower train.lr")
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                last = self.run_eval()
                if self._select(last):
                    self.log(f"[cel] early stop at step {self.step}: no better val_mse in "
                             f"{cfg.patience} evaluations (best at step {self.best_step})")
                    break
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                rate = self.step / (time.perf_counter() - t0)
                extra = " ".join(f"{k}={v:.4f}" for k, v in last.items())
                self.log(f"[cel] step {self.step}/{cfg.steps} loss={loss.item():.2f} "
                         f"train_mse={sse.item() / n:.4f} {extra} ({rate:.1f} steps/s)")
        self.history.step_seconds = t_steps / max(1, len(self.history.step))
        if self.best_state is not None:
            self.restore(self.best_state)
        self.trigger("on_fit_end")
        return self.history

    # -- validation-based step selection ---------------------------------------------------
    def snapshot(self) -> dict:
        """Everything needed to return to the current model (methods may change shape)."""
        return {"user_emb": copy.deepcopy(self.user_emb), "item_emb": copy.deepcopy(self.item_emb),
                "step": self.step}

    def restore(self, state: dict) -> None:
        self.user_emb, self.item_emb = state["user_emb"], state["item_emb"]

    def _select(self, metrics: dict) -> bool:
        """Keep the best-validation snapshot; return True when patience is exhausted."""
        if "val_mse" not in metrics or self.step < self.cfg.min_steps:
            return False
        if not all(cb.ready(self) for cb in self.callbacks):
            return False
        if metrics["val_mse"] < self.best_val:
            self.best_val, self.best_step, self._stale = metrics["val_mse"], self.step, 0
            self.best_state = self.snapshot()
            return False
        self._stale += 1
        return self.cfg.patience > 0 and self._stale >= self.cfg.patience

"""The one training loop: a :class:`Trainer` parameterised by a Task and a Feed, with named
callback events (minGPT-style ``trigger``). No other training loop exists in ``cel``.

Loss of a step on batch b (Eq. 1 and Eq. 8):
    L = s_b · Σ_{d ∈ b} loss_task(y(A_u, B_i), x_d)  +  r_b · λ_reg / 2 · Σ_p ||p||²_F  (+ method penalties)
with loss_task = squared error (regression) or BCE on logits (conversion), and (s_b, r_b) from the
Feed ((1, 1) for full batch: Eq. 1 + Eq. 8 as written).

Events: ``on_fit_start``, ``on_after_backward`` (gradients exist: gradient averaging, Eq. 7),
``on_step_end`` (after the update and the model constraint: the CEL cluster schedule, eTree/JNKM/
CERP steps), ``on_eval``, ``on_fit_end``. Callbacks run under ``torch.no_grad()``.

The trainer also owns step selection and early stopping on validation (the task's primary
metric, in the task's direction), progressive evaluation on a stream feed (predict each batch,
then train on it), and checkpoints (``checkpoint_path``: everything needed to continue the run
exactly; a run killed between steps resumes from its last checkpoint).
"""
from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from cel.config import TrainConfig
from cel.embeddings.base import EmbeddingMethod, test_time
from cel.models.base import InteractionModel, PairScorer
from cel.train.feeds import Batch, Feed
from cel.train.gd import GD
from cel.train.tasks import Task

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "gd": GD,                        # = torch.optim.SGD(lr) without its 2 s torch._dynamo import
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}
EVAL_CHUNK = 1 << 16


class Callback:
    """Base class: override the events you need."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_after_backward(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer") -> None: ...
    def on_eval(self, trainer: "Trainer", metrics: dict) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...

    def ready(self, trainer: "Trainer") -> bool:
        """False while the callback's schedule must run on (no early stop, no step selection)."""
        return True


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)      # mean task loss on the step's batch
    eval_step: list[int] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    progressive: list[dict] = field(default_factory=list)      # stream: per-batch predict-then-train scores
    step_seconds: float = 0.0


def batch_rows(batch: Batch, n: int) -> Batch:
    """The first ``n`` rows of a batch (ids, labels, history, side features; no pair index)."""
    feats = {k: (ids[:n], mask[:n]) for k, (ids, mask) in batch.features.items()}
    hist = None if batch.history is None else batch.history[:n]
    hmask = None if batch.history_mask is None else batch.history_mask[:n]
    return Batch(batch.users[:n], batch.items[:n], batch.labels[:n], hist, hmask, feats, None, batch.scale,
                 batch.reg_scale)


def predict(model: InteractionModel, user_emb: EmbeddingMethod, item_emb: EmbeddingMethod,
            batch: Batch) -> torch.Tensor:
    """(B,) model outputs for a batch: the exact sparse path for dot-product models when the batch
    carries its pair structure, else embeddings looked up per row (history through ``item_emb``)."""
    if batch.pairs is not None and isinstance(model, PairScorer):
        return model.score_pairs(user_emb.table(), item_emb.table(), batch.pairs)
    extra = {}
    if batch.history is not None:
        extra["history"], extra["history_mask"] = item_emb(batch.history), batch.history_mask
    if batch.features:
        extra["features"] = batch.features
    return model(user_emb(batch.users), item_emb(batch.items), **extra)


def predict_all(model, user_emb, item_emb, batch: Batch) -> torch.Tensor:
    """Like :func:`predict`, in chunks when there is no exact full-batch path (evaluation)."""
    if (batch.pairs is not None and isinstance(model, PairScorer)) or len(batch) <= EVAL_CHUNK:
        return predict(model, user_emb, item_emb, batch)
    outs = []
    for s in range(0, len(batch), EVAL_CHUNK):
        sl = slice(s, s + EVAL_CHUNK)
        part = Batch(batch.users[sl], batch.items[sl], batch.labels[sl],
                     None if batch.history is None else batch.history[sl],
                     None if batch.history_mask is None else batch.history_mask[sl],
                     {k: (i[sl], m[sl]) for k, (i, m) in batch.features.items()})
        outs.append(predict(model, user_emb, item_emb, part))
    return torch.cat(outs)


class Trainer:
    def __init__(self, task: Task, feed: Feed, model: InteractionModel, user_emb: EmbeddingMethod,
                 item_emb: EmbeddingMethod, cfg: TrainConfig, reg: float,
                 evaluate: Callable[["Trainer"], dict] | None = None, callbacks: list[Callback] | None = None,
                 log: Callable[[str], None] | None = None, checkpoint_path: str | Path | None = None):
        self.task, self.feed, self.model = task, feed, model
        self.user_emb, self.item_emb = user_emb, item_emb
        self.cfg, self.reg = cfg, reg
        self.evaluate = evaluate
        self.callbacks = list(callbacks or [])
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.step = 0
        self.history = History()
        self.best_val, self.best_step, self.best_state, self._stale = task.worst(), 0, None, 0
        self.optimizer = self.build_optimizer()
        self._prog = task.running()          # the progressive score over everything streamed

    # -- pieces a callback may call ------------------------------------------------------
    def build_optimizer(self) -> list[torch.optim.Optimizer]:
        """Optimisers per parameter group (Tables 13-14 vary the user side separately): the user
        group takes ``user_optimizer``/``user_lr`` when set, the item group (and the model's own
        parameters) ``optimizer``/``lr``. Rebuilt by callbacks that add parameters."""
        cfg = self.cfg
        groups = {(cfg.user_optimizer or cfg.optimizer, cfg.user_lr or cfg.lr): list(self.user_emb.parameters())}
        item_key = (cfg.optimizer, cfg.lr)
        groups[item_key] = groups.get(item_key, []) + [p for m in (self.item_emb, self.model) for p in m.parameters()]
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

    def losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, summed task loss of the batch) at the current parameters."""
        pred = predict(self.model, self.user_emb, self.item_emb, batch)
        data = self.task.loss_terms(pred, batch.labels).sum()
        reg = sum(p.pow(2).sum() for m in (self.user_emb, self.item_emb) for p in m.embedding_parameters())
        total = batch.scale * data + 0.5 * self.reg * batch.reg_scale * reg
        for emb in (self.user_emb, self.item_emb):
            pen = emb.penalty()      # a parameter regulariser (λ_p, eTree/JNKM's λ): scaled as λ_reg is,
            if pen is not None:      # so a mean-loss stream does not weigh it D times more than Eq. 8 does
                total = total + batch.reg_scale * pen
        return total, data

    def trigger(self, event: str, *args) -> None:
        with torch.no_grad():
            for cb in self.callbacks:
                getattr(cb, event)(self, *args)

    def run_eval(self) -> dict:
        if self.evaluate is None:
            return {}
        with torch.no_grad(), test_time(self.user_emb, self.item_emb):   # what is stored at test time
            metrics = self.evaluate(self)
        self.history.eval_step.append(self.step)
        self.history.eval.append(metrics)
        self.trigger("on_eval", metrics)
        return metrics

    # -- the loop ---------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss, backward, callbacks, update, constraint. Returns (total loss, task loss sum)."""
        for opt in self.optimizer:
            opt.zero_grad(set_to_none=True)
        self.batch = batch                   # callbacks may read the step's batch (its scales)
        loss, data = self.losses(batch)
        loss.backward()
        self.trigger("on_after_backward")
        for opt in self.optimizer:
            opt.step()
        with torch.no_grad():
            self.constrain()
        return loss.detach(), data.detach()

    def progressive_score(self, batch: Batch) -> None:
        """Stream feeds: score the batch with the current model before training on it. The batch's
        own score is logged every step; the score over everything seen so far (the task's running
        score: error sums for MSE, after every step; every prediction for AUC, every ``every`` (10)
        steps and at the end, not on every batch, which would cost O(seen) per step)."""
        fresh = getattr(batch, "fresh", None)         # a replay feed puts its new rows first
        if fresh is not None and fresh < len(batch):
            batch = batch_rows(batch, fresh)
        with torch.no_grad(), test_time(self.user_emb, self.item_emb):
            pred = predict(self.model, self.user_emb, self.item_emb, batch)
        self._prog.add(pred, batch.labels)
        self.history.progressive.append({"step": self.step, "n": self._prog.n,
                                         **{f"batch_{k}": v for k, v in self.task.metrics(pred, batch.labels).items()}})
        if self.step % self._prog.every == 0:
            self._cumulative_score()

    def _cumulative_score(self) -> None:
        """Add the progressive (predict-then-train) score over every batch seen to the last record."""
        if self._prog.n and "progressive_" + self.task.primary not in self.history.progressive[-1]:
            self.history.progressive[-1].update({f"progressive_{k}": v for k, v in self._prog.value().items()})

    def fit(self) -> History:
        cfg = self.cfg
        if self.step == 0:
            self.constrain()
            self.trigger("on_fit_start")
        t_steps, t0, start, last = 0.0, time.perf_counter(), self.step, {}
        batches = iter(self.feed.batches())
        while self.step < cfg.steps:          # test first: a stream's next batch is consumed when pulled
            batch = next(batches, None)
            if batch is None:
                break
            self.step += 1
            if self.feed.progressive:
                self.progressive_score(batch)
            ts = time.perf_counter()
            loss, data = self.train_step(batch)
            t_steps += time.perf_counter() - ts
            self.history.step.append(self.step)
            self.history.loss.append(loss.item())
            self.history.train_loss.append(data.item() / len(batch))
            self.trigger("on_step_end")
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {self.step}: lower train.lr")
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                last = self.run_eval()
                if self._select(last):
                    self.log(f"[cel] early stop at step {self.step}: no better val_{self.task.primary} in "
                             f"{cfg.patience} evaluations (best at step {self.best_step})")
                    break
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                rate = (self.step - start) / (time.perf_counter() - t0)
                extra = " ".join(f"{k}={v:.4f}" for k, v in last.items())
                self.log(f"[cel] step {self.step}/{cfg.steps} loss={loss.item():.2f} "
                         f"train_loss={data.item() / len(batch):.4f} {extra} ({rate:.1f} steps/s)")
            if cfg.checkpoint_every and self.checkpoint_path and self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint(self.checkpoint_path)
        self.history.step_seconds = t_steps / max(1, self.step - start)
        if self.feed.progressive:
            self._cumulative_score()
        if self.best_state is not None:
            self.restore(self.best_state)
        self.trigger("on_fit_end")
        return self.history

    # -- validation-based step selection ---------------------------------------------------
    def snapshot(self) -> dict:
        """Everything needed to return to the current model (methods may change shape)."""
        return {"user_emb": copy.deepcopy(self.user_emb), "item_emb": copy.deepcopy(self.item_emb),
                "model": copy.deepcopy(self.model), "step": self.step}

    def restore(self, state: dict) -> None:
        self.user_emb, self.item_emb, self.model = state["user_emb"], state["item_emb"], state["model"]

    @property
    def selected_step(self) -> int:
        return self.best_step if self.best_state is not None else self.step

    def _select(self, metrics: dict) -> bool:
        """Keep the best-validation snapshot; return True when patience is exhausted."""
        key = f"val_{self.task.primary}"
        if key not in metrics or self.step < self.cfg.min_steps:
            return False
        if not all(cb.ready(self) for cb in self.callbacks):
            return False
        if self.task.better(metrics[key], self.best_val):
            self.best_val, self.best_step, self._stale = metrics[key], self.step, 0
            self.best_state = self.snapshot()
            return False
        self._stale += 1
        return self.cfg.patience > 0 and self._stale >= self.cfg.patience

    # -- checkpoints ------------------------------------------------------------------------
    _STATE = ("step", "history", "best_val", "best_step", "best_state", "_stale", "_prog",
              "user_emb", "item_emb", "model", "optimizer", "callbacks")

    def save_checkpoint(self, path: str | Path) -> None:
        """Atomically write everything the loop needs to continue exactly: modules, optimiser
        state, callbacks (cluster schedule), selection state, the feed's position, RNG state."""
        path = Path(path)
        state = {k: getattr(self, k) for k in self._STATE}
        state["feed_state"] = dict(self.feed.state)
        state["rng"] = torch.get_rng_state()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: str | Path) -> None:
        state = torch.load(path, weights_only=False)
        for k in self._STATE:
            setattr(self, k, state[k])
        self.feed.state = dict(state["feed_state"])
        torch.set_rng_state(state["rng"])
        self.log(f"[cel] resumed from {path} at step {self.step}")


def full_batch_trainer(model: InteractionModel, user_emb: EmbeddingMethod, item_emb: EmbeddingMethod, pairs,
                       targets: torch.Tensor, cfg: TrainConfig, reg: float, task: Task | None = None,
                       **kwargs) -> Trainer:
    """A :class:`Trainer` on the ``full`` feed over interactions already in a
    :class:`~cel.models.pairs.PairIndex` (sorted by user, item) with their targets (D,)."""
    from cel.train.feeds import FeedConfig, FullFeed, InteractionTable
    from cel.train.tasks import Regression

    table = InteractionTable(pairs.users, pairs.items, targets, torch.zeros(len(pairs), dtype=torch.int64),
                             pairs.n_users, pairs.n_items)
    return Trainer(task or Regression(), FullFeed(table, FeedConfig("full"), cfg.seed), model, user_emb,
                   item_emb, cfg, reg, **kwargs)

"""Feeds: how interactions reach the model. One registry, one :class:`Batch` type.

* ``full``       every step sees every training interaction through the exact sparse path of
                 dot-product models (``Batch.pairs``, a :class:`PairIndex`): full-batch GD (A.1).
* ``minibatch``  shuffled epochs of ``batch_size`` interactions (seeded per epoch).
* ``stream``     chronological order, each batch once; ``progressive`` = the trainer predicts each
                 batch before it trains on it (predict-then-train, as River's progressive score).

Every feed also answers "the training interactions of entity e" (:meth:`Feed.interactions`),
which CEL's reassignment, GPCA split and split criteria use whatever the feed: the whole training
fold (full, minibatch) or what the stream has delivered so far.

Loss scale per batch (``loss``): ``sum`` (Eq. 1 as written: the full-batch default), ``mean``
(average over the batch), ``dataset`` (D / B times the batch sum: an unbiased estimate of Eq. 1,
so a learning rate means the same as in full batch; the mini-batch default). The norm
regulariser of Eq. 8 is scaled with it (``reg_scale`` = scale · B / D), so that every choice is
a multiple of the same objective, Eq. 1 + Eq. 8 (with ``mean``, a mean loss is not drowned by a
regulariser summed over whole tables).

Shapes: B batch, H history length, F side-feature slots, D interactions, M items, N users.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar, Iterator

import numpy as np
import pandas as pd
import torch

from cel.cluster.interactions import EntityInteractions
from cel.errors import ConfigError
from cel.models.pairs import PairIndex


@dataclass
class Batch:
    users: torch.Tensor                       # (B,) int64
    items: torch.Tensor                       # (B,) int64
    labels: torch.Tensor                      # (B,) float32 targets of the task
    history: torch.Tensor | None = None       # (B, H) item ids of the user's earlier interactions
    history_mask: torch.Tensor | None = None  # (B, H) True where a history slot is real (not padding)
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # name -> ((B, F) ids, (B, F) mask)
    pairs: PairIndex | None = None            # exact sparse structure (full feed, evaluation)
    scale: float = 1.0                        # multiplier of the summed loss terms
    reg_scale: float = 1.0                    # multiplier of the norm regulariser (Eq. 8)

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class FeedConfig:
    kind: str = "full"
    batch_size: int = 1024
    loss: str = ""             # sum | mean | dataset; "" = the feed's default
    history: int = 0           # history length H (0 = as the model asks, ``model.history_len``)
    buffer: int = 20           # replay: the latest n interactions kept per user and per item (A.1)
    passes: int = 1            # replay: passes over a finite stream (0 = without end; train.steps stops it)
    order: str = "time"        # stream, replay: "time" (timestamp order) or "shuffled" (one seeded permutation)

    @classmethod
    def from_dict(cls, d: dict | None) -> "FeedConfig":
        d = dict(d or {})
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"config unknown key at 'tasks.*.feed.{sorted(unknown)[0]}'")
        cfg = cls(**d)
        if cfg.kind not in FEEDS:
            raise ConfigError(f"config invalid value at 'tasks.*.feed.kind': {cfg.kind!r} (known: {', '.join(FEEDS)})")
        if cfg.buffer < 1 or cfg.passes < 0 or cfg.batch_size < 1:
            raise ConfigError("config invalid value at 'tasks.*.feed': batch_size >= 1, buffer >= 1, passes >= 0")
        if cfg.order not in ("time", "shuffled"):
            raise ConfigError(f"config invalid value at 'tasks.*.feed.order': {cfg.order!r} (known: time, shuffled)")
        if cfg.loss not in ("", "sum", "mean", "dataset"):
            raise ConfigError(f"config invalid value at 'tasks.*.feed.loss': {cfg.loss!r} (known: sum, mean, dataset)")
        return cfg


@dataclass(frozen=True)
class InteractionTable:
    """Interactions as index tensors, sorted by (user, item) once, here (the order PairIndex wants)."""

    users: torch.Tensor       # (D,)
    items: torch.Tensor       # (D,)
    labels: torch.Tensor      # (D,) task targets
    timestamps: torch.Tensor  # (D,)
    n_users: int
    n_items: int
    ratings: torch.Tensor | None = None   # (D,) raw ratings (row features: behaviour type, auxiliary target)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, n_users: int, n_items: int, labels_of) -> "InteractionTable":
        u, i = frame["user"].to_numpy(), frame["item"].to_numpy()
        order = np.lexsort((i, u))
        ts = frame["timestamp"].to_numpy() if "timestamp" in frame else np.zeros(len(frame), dtype=np.int64)
        r = torch.as_tensor(frame["rating"].to_numpy()[order], dtype=torch.float32)
        return cls(torch.as_tensor(u[order], dtype=torch.int64), torch.as_tensor(i[order], dtype=torch.int64),
                   labels_of(r), torch.as_tensor(ts[order], dtype=torch.int64), n_users, n_items, r)

    def __len__(self) -> int:
        return len(self.users)

    def pairs(self) -> PairIndex:
        return PairIndex.build(self.users.numpy(), self.items.numpy(), self.n_users, self.n_items)

    def entity_interactions(self, side: str, rows: torch.Tensor | None = None) -> EntityInteractions:
        """The interactions of every user (``side='user'``) or item, optionally of ``rows`` only."""
        u, i, y = (self.users, self.items, self.labels) if rows is None else (self.users[rows], self.items[rows], self.labels[rows])
        if side == "item":
            return EntityInteractions.from_arrays(i, u, y, self.n_items, self.n_users)
        return EntityInteractions.from_arrays(u, i, y, self.n_users, self.n_items)


#: per-row fields a model may ask for (``row_features``), carried in ``Batch.features`` as
#: ((B, F) ids, (B, F) mask): the history slots' behaviour type (their rating, 1-based ids) and
#: time gap to the row's time (log2-hour buckets, 1-based), and the row's own rating (an
#: auxiliary training target; a model must never use it in its prediction)
ROW_FEATURES = ("history_type", "history_gap", "rating")
GAP_BUCKETS = 32


class BatchContext:
    """What a model may ask a batch to carry beyond ids: the user's history (the last H training
    items strictly before the interaction's time), item side features (e.g. genre), user side
    features (e.g. a scenario) and per-row fields (:data:`ROW_FEATURES`)."""

    def __init__(self, train: InteractionTable, history_len: int = 0,
                 item_features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                 user_features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                 row_features: tuple[str, ...] = ()):
        self.history_len, self.item_features = history_len, dict(item_features or {})
        self.user_features, self.row_features = dict(user_features or {}), tuple(row_features)
        unknown = set(self.row_features) - set(ROW_FEATURES)
        if unknown:
            raise ConfigError(f"row feature {sorted(unknown)[0]!r} unknown (known: {', '.join(ROW_FEATURES)})")
        if history_len:
            order = np.lexsort((train.timestamps.numpy(), train.users.numpy()))
            self._u, self._t = train.users.numpy()[order], train.timestamps.numpy()[order]
            self._items = train.items.numpy()[order]
            ratings = train.ratings if train.ratings is not None else train.labels + 1
            self._r = np.rint(ratings.numpy()[order]).astype(np.int64)
            self._start = np.searchsorted(self._u, np.arange(train.n_users + 1))
            self._key = self._user_time_keys(train.n_users)

    def attach(self, batch: Batch, timestamps: torch.Tensor, ratings: torch.Tensor | None = None) -> Batch:
        if self.history_len:
            batch.history, batch.history_mask = self._history(batch.users.numpy(), timestamps.numpy())
        for name, (ids, mask) in self.item_features.items():
            batch.features[name] = (ids[batch.items], mask[batch.items])
        for name, (ids, mask) in self.user_features.items():
            batch.features[name] = (ids[batch.users], mask[batch.users])
        if self.row_features:
            self._row_features(batch, timestamps, ratings)
        return batch

    def _row_features(self, batch: Batch, ts: torch.Tensor, ratings: torch.Tensor | None) -> None:
        want = self.row_features
        if ("history_type" in want or "history_gap" in want) and not self.history_len:
            raise ConfigError("row features history_type / history_gap need a history (history_len > 0)")
        if "history_type" in want or "history_gap" in want:
            pos, mask = self._pos
            if "history_type" in want:
                ids = torch.as_tensor(np.where(mask, self._r[pos], 0), dtype=torch.int64)
                batch.features["history_type"] = (ids, torch.as_tensor(mask))
            if "history_gap" in want:
                hours = np.maximum(ts.numpy()[:, None] - self._t[pos], 0) / 3600.0
                b = 1 + np.minimum(np.floor(np.log2(1.0 + hours)), GAP_BUCKETS - 2).astype(np.int64)
                batch.features["history_gap"] = (torch.as_tensor(np.where(mask, b, 0)), torch.as_tensor(mask))
        if "rating" in want and ratings is not None:
            r = torch.round(ratings).to(torch.int64)[:, None]
            batch.features["rating"] = (r, torch.ones_like(r, dtype=torch.bool))

    def _user_time_keys(self, n_users: int) -> tuple[np.ndarray, int, int] | None:
        """(user * span + (t - t_min), t_min, span) per sorted training row: one array ordered as
        the rows are (by user, then time), so one ``searchsorted`` finds every row's history end.
        None when the keys would not fit in int64 (then each user's slice is searched alone)."""
        if len(self._t) == 0:
            return None
        t_min = int(self._t.min())
        span = int(self._t.max()) - t_min + 2          # t - t_min in [0, span - 2]; span - 1 = "after all"
        if (n_users + 1) * span >= 2 ** 62:
            return None
        return self._u.astype(np.int64) * span + (self._t.astype(np.int64) - t_min), t_min, span

    def _history_end(self, users: np.ndarray, ts: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Per row: the position of the user's first training interaction at or after ``ts``
        (the strictly earlier ones, ``lo`` .. end - 1, are its history)."""
        if self._key is not None:
            key, t_min, span = self._key
            q = users.astype(np.int64) * span + np.clip(ts.astype(np.int64) - t_min, 0, span - 1)
            return np.searchsorted(key, q, side="left").astype(np.int64)
        return lo + np.array([np.searchsorted(self._t[a:b], t, side="left")
                              for a, b, t in zip(lo, self._start[users + 1], ts)], dtype=np.int64)

    def _history(self, users: np.ndarray, ts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        H = self.history_len
        lo = self._start[users]
        end = self._history_end(users, ts, lo)
        pos = end[:, None] - H + np.arange(H)[None, :]          # (B, H), oldest first
        mask = pos >= lo[:, None]
        pos = np.clip(pos, 0, max(0, len(self._items) - 1))
        self._pos = (pos, mask)                                   # the slots' rows, for row features
        ids = np.where(mask, self._items[pos], 0)
        return torch.as_tensor(ids, dtype=torch.int64), torch.as_tensor(mask)


def make_batch(table: InteractionTable, rows: torch.Tensor | None, context: BatchContext | None,
               scale: tuple[float, float] = (1.0, 1.0), with_pairs: bool = False) -> Batch:
    """A batch of ``rows`` of ``table`` (None = all rows, in table order); ``scale`` = (loss, reg)."""
    if rows is None:
        b = Batch(table.users, table.items, table.labels, scale=scale[0], reg_scale=scale[1],
                  pairs=table.pairs() if with_pairs else None)
        ts = table.timestamps
    else:
        b = Batch(table.users[rows], table.items[rows], table.labels[rows], scale=scale[0], reg_scale=scale[1])
        ts = table.timestamps[rows]
    if context is None:
        return b
    r = table.ratings if table.ratings is None or rows is None else table.ratings[rows]
    return context.attach(b, ts, r)


class Feed:
    """Base feed. ``batches()`` yields training batches from the current position (``state``)."""

    name: ClassVar[str] = ""
    default_loss: ClassVar[str] = "sum"
    progressive: ClassVar[bool] = False

    def __init__(self, train: InteractionTable, cfg: FeedConfig, seed: int, context: BatchContext | None = None):
        self.train, self.cfg, self.seed, self.context = train, cfg, seed, context
        self.state: dict = {}
        self._inter: dict[str, EntityInteractions] = {}

    def scale(self, b: int) -> tuple[float, float]:
        """(loss multiplier, regulariser multiplier) of a batch of b interactions."""
        loss, D = self.cfg.loss or self.default_loss, len(self.train)
        s = {"sum": 1.0, "mean": 1.0 / b, "dataset": D / b}[loss]
        return s, s * b / D

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def interactions(self, side: str) -> EntityInteractions:
        """Training interactions of every entity of ``side`` available to the model now."""
        if side not in self._inter:
            self._inter[side] = self.train.entity_interactions(side)
        return self._inter[side]

    @property
    def steps_per_epoch(self) -> int:
        return 1


class FullFeed(Feed):
    name = "full"

    def batches(self) -> Iterator[Batch]:
        batch = make_batch(self.train, None, self.context, self.scale(len(self.train)), with_pairs=True)
        while True:
            yield batch


class MiniBatchFeed(Feed):
    """Shuffled epochs; epoch e's permutation comes from (seed, e), so a resumed run continues
    exactly where it stopped (state = epoch and position)."""

    name = "minibatch"
    default_loss = "dataset"

    def batches(self) -> Iterator[Batch]:
        D, b = len(self.train), self.cfg.batch_size
        self.state.setdefault("epoch", 0)
        self.state.setdefault("pos", 0)
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.state["epoch"])
            perm = torch.randperm(D, generator=g)
            while self.state["pos"] < D:
                rows = perm[self.state["pos"]: self.state["pos"] + b]
                self.state["pos"] += len(rows)
                yield make_batch(self.train, rows, self.context, self.scale(len(rows)))
            self.state["epoch"] += 1
            self.state["pos"] = 0

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.train) // self.cfg.batch_size)


class StreamFeed(Feed):
    """Chronological batches, each seen once; entity interactions are those delivered so far.
    ``order: shuffled`` streams one seeded permutation instead of timestamp order (an ablation:
    MovieLens timestamps come in per-user sessions, so a time-ordered batch holds few users)."""

    name = "stream"
    default_loss = "mean"
    progressive = True

    def __init__(self, train, cfg, seed, context=None):
        super().__init__(train, cfg, seed, context)
        if cfg.order == "shuffled":
            self.order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed * 1_000_003 + 17))
        else:
            self.order = torch.as_tensor(np.argsort(train.timestamps.numpy(), kind="stable"), dtype=torch.int64)

    def batches(self) -> Iterator[Batch]:
        self.state.setdefault("pos", 0)
        while self.state["pos"] < len(self.order):
            rows = self.order[self.state["pos"]: self.state["pos"] + self.cfg.batch_size]
            self.state["pos"] += len(rows)
            self._inter.clear()
            yield make_batch(self.train, rows, self.context, self.scale(len(rows)))

    def interactions(self, side: str) -> EntityInteractions:
        if side not in self._inter:
            self._inter[side] = self.train.entity_interactions(side, self.order[: self.state.get("pos", 0)])
        return self._inter[side]

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.train) // self.cfg.batch_size)


FEEDS: dict[str, type[Feed]] = {"full": FullFeed, "minibatch": MiniBatchFeed, "stream": StreamFeed}


def make_feed(cfg: FeedConfig, train: InteractionTable, seed: int, context: BatchContext | None = None) -> Feed:
    return FEEDS[cfg.kind](train, cfg, seed, context)


def item_genres(items: pd.DataFrame, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, F) genre ids (1-based; 0 = padding) and mask from the ``genres`` column ("A|B|C")."""
    return item_tokens(items, n_items, "genres")


def item_brand(items: pd.DataFrame, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 1) brand ids (Amazon metadata; 0 = missing) and mask."""
    return item_tokens(items, n_items, "brand")


def item_tokens(items: pd.DataFrame, n_items: int, column: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, F) ids of the "|"-separated tokens of an items column (1-based; 0 = padding) and mask."""
    if column not in items:
        raise ConfigError(f"side feature '{column}': the items table has no such column "
                          f"(columns: {', '.join(map(str, items.columns))})")
    lists = items.set_index("item")[column].reindex(range(n_items)).fillna("").astype(str).str.split("|")
    lists = [[g for g in gs if g] for gs in lists]
    vocab = {g: k + 1 for k, g in enumerate(sorted({g for gs in lists for g in gs}))}
    F = max(1, max((len(gs) for gs in lists), default=1))
    ids = torch.zeros(n_items, F, dtype=torch.int64)
    for j, gs in enumerate(lists):
        ids[j, : len(gs)] = torch.tensor([vocab[g] for g in gs], dtype=torch.int64)
    return ids, ids > 0


__all__ = ["Batch", "BatchContext", "FEEDS", "ROW_FEATURES", "Feed", "FeedConfig", "InteractionTable", "make_batch",
           "make_feed", "item_brand", "item_genres", "item_tokens"]

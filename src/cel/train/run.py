"""One run (a :class:`~cel.runkey.RunKey`), as a pipeline: load → select → refit → evaluate → write.

Selection (never test): every candidate of the block's hand grid (``grid[].search``; one
candidate when there is none) trains on the training fold minus its validation slice, validation
picks the step and the candidate. With ``train.refit`` the winner then trains again on the whole
training fold for the selected number of steps (A.1: the paper trains on the 80% fold and tunes
the iterations by validation); its test metrics are the run's, and the held-out model's stay in
``metrics.json`` as ``holdout_*``.

Writes into the run folder: ``config.yaml`` (resolved), ``curves.parquet`` (per-step loss,
periodic validation metrics, progressive scores on a stream), ``assignments.parquet`` (clustered
methods) and last, atomically, ``metrics.json`` (the source of truth). A run killed halfway
leaves no ``metrics.json``; running it again completes it, from ``checkpoint.pt`` when
``train.checkpoint_every`` is set.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from cel import paths
from cel.config import ProjectConfig, TrainConfig, config_hash
from cel.data.chrono import chrono_holdout
from cel.data.pipeline import load_fold
from cel.data.splits import FoldData
from cel.embeddings import EMBEDDINGS, ClusteredEmbedding, DataAware, TrainingData, test_time
from cel.embeddings.cel_lite import CELLiteEmbedding
from cel.embeddings.full import FullEmbedding
from cel.embeddings.prehash import PreHashHistory
from cel.errors import ConfigError
from cel.io import write_json, write_parquet, write_text
from cel.metrics import bucket_mse
from cel.models import MODELS
from cel.models.side_features import SideFeatures
from cel.provenance import git_commit, source_sha256
from cel.runkey import RunKey
from cel.train.feeds import BatchContext, FeedConfig, InteractionTable, item_brand, item_genres, make_batch, make_feed
from cel.train.grad_avg import GradientAveraging
from cel.train.lite_schedule import LiteSchedule
from cel.train.method_steps import MethodSteps
from cel.train.schedule import ClusterSchedule
from cel.train.tasks import Task, make_task
from cel.train.trainer import Trainer, predict_all

BUCKET_EDGES = [0, 1, 5, 10, 20, 50, 100, 200, 400, 800, 2000]
SIDE_FEATURES = {"genre": item_genres, "brand": item_brand}      # name -> builder from the items table


@dataclass
class RunData:
    """What ``load`` gives the later stages: the fold as tables, the task, the settings."""

    key: RunKey
    task: Task
    train_cfg: TrainConfig
    fold: FoldData
    data_sha: str
    items: pd.DataFrame
    train: pd.DataFrame               # the training part minus the validation slice
    tables: dict[str, InteractionTable]   # train / val / test (val may be empty)
    threads: int
    generator: torch.Generator


@dataclass
class Parts:
    model: torch.nn.Module
    user_emb: torch.nn.Module
    item_emb: torch.nn.Module
    schedules: list[ClusterSchedule]


def holdout(frame: pd.DataFrame, fraction: float, seed: int, by_time: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a validation set off the training fold (never the test fold); ``by_time``: its last
    ``fraction`` by time (the chronological split of the online protocol, ``cel.data.chrono``)."""
    if by_time:
        return chrono_holdout(frame, fraction)
    if fraction <= 0:
        return frame, frame.iloc[:0]
    mask = np.random.default_rng(seed).random(len(frame)) < fraction
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def set_determinism(seed: int, threads: int) -> torch.Generator:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------- load
def load(cfg: ProjectConfig, key: RunKey, threads: int | None = None) -> RunData:
    """The fold's data, split into train / validation (from the training part) / test tables."""
    tcfg = cfg.train_for(key)
    threads = threads or tcfg.threads
    entry = cfg.task(key.task)
    task = make_task(entry["kind"], threshold=entry.get("threshold", 4.0))
    fold, sha = load_fold(cfg, key)
    gen = set_determinism(key.seed, threads)
    train, val = holdout(fold.train, tcfg.val_fraction, seed=key.seed + 1000 * key.fold,
                         by_time=cfg.variant(key.variant).get("split") == "chrono")
    items = pd.read_parquet(paths.variant_dir(cfg.results_dir, key.dataset, key.variant) / "items.parquet")
    tables = {name: InteractionTable.from_frame(f, fold.n_users, fold.n_items, task.labels)
              for name, f in (("train", train), ("val", val), ("test", fold.test))}
    return RunData(key, task, tcfg, fold, sha, items, train, tables, threads, gen)


# --------------------------------------------------------------------------------- build
def build_embeddings(cfg: ProjectConfig, key: RunKey, n_users: int, n_items: int, generator: torch.Generator,
                     overrides: dict | None = None):
    """(user embedding, item embedding). Table 2/7 protocol: only item embeddings are compressed,
    users stay full; a method whose parameters say ``entities: user|both`` compresses that side too.
    ``overrides``: one candidate of the block's hand grid."""
    method = EMBEDDINGS[cfg.method_class(key.method)]
    where = f"grid.search.{key.method}" if overrides else f"methods.{key.method}"
    params = method.Params.from_dict({**cfg.method_params(key.method, key), **(overrides or {})}, key=where)
    sides = cfg.task(key.task).get("compress") or getattr(params, "entities", "item")   # task's switch wins
    cr, rank = float(key.compression), cfg.model(key.model).rank
    full = FullEmbedding.Params(init_scale=params.init_scale)     # both sides share D.1's reading
    user_emb = (method(n_users, rank, cr, params, generator) if sides in ("user", "both")
                else FullEmbedding(n_users, rank, 100.0, full, generator))
    item_emb = (method(n_items, rank, cr, params, generator) if sides in ("item", "both")
                else FullEmbedding(n_items, rank, 100.0, full, generator))
    return user_emb, item_emb


def rule_based_assignment(kind: str, items: pd.DataFrame, train: pd.DataFrame, n_items: int,
                          budget: int) -> torch.Tensor:
    """Table 5 initialisations: by (first) genre, or items partitioned evenly by average rating."""
    if kind == "genre":
        first = items.sort_values("item")["genres"].fillna("").str.split("|").str[0]
        return torch.as_tensor(pd.factorize(first)[0] % budget, dtype=torch.long)
    mean = train.groupby("item")["rating"].mean().reindex(range(n_items))
    mean = mean.fillna(train["rating"].mean()).to_numpy()
    ranks = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
    return torch.as_tensor(ranks * budget // n_items, dtype=torch.long)


def frozen_path(cfg: ProjectConfig, key: RunKey, params) -> str:
    """The frozen clustering of Table 11: a parquet path, or the assignments written by the run of
    method ``frozen_from`` with the same task, data, compression, fold and seed."""
    if getattr(params, "frozen_from", ""):
        return str(paths.run_dir(cfg.results_dir, replace(key, method=params.frozen_from)) / "assignments.parquet")
    return getattr(params, "frozen_assignments", "")


def init_clustering(emb, side: str, items: pd.DataFrame, train: pd.DataFrame, frozen: str = "") -> None:
    """Apply a rule-based initial clustering or a frozen one from an earlier run (Tables 5, 11)."""
    params = emb.params
    if frozen:
        table = pd.read_parquet(frozen)
        table = table[table["side"] == side].sort_values("entity")
        if len(table) != emb.num_entities:
            raise ValueError(f"{frozen}: {len(table)} {side} assignments, "
                             f"expected {emb.num_entities}")
        emb.set_assignments(torch.tensor(table["cluster"].to_numpy(), dtype=torch.long))
    elif params.init != "random":
        if side != "item":
            raise ValueError("rule-based initialisation is defined for items only")
        emb.set_assignments(rule_based_assignment(params.init, items, train, emb.num_entities, emb.max_clusters))


def clustered_sides(user_emb, item_emb) -> list[tuple[str, ClusteredEmbedding]]:
    return [(side, e) for side, e in (("user", user_emb), ("item", item_emb)) if isinstance(e, ClusteredEmbedding)]


def build_model(cfg: ProjectConfig, d: RunData):
    """The interaction model; history length and side fields from ``models.<name>``, each side
    field's vocabulary sized from the items table (DeepFM/DIN own those tables)."""
    name, mc = d.key.model, cfg.model(d.key.model)
    kwargs: dict = {"nonneg": mc.nonneg}
    if mc.history:
        kwargs["history_len"] = mc.history
    if mc.side_features is not None:
        kwargs["side_features"] = mc.side_features
    names = mc.side_features if mc.side_features is not None else MODELS[name].side_features
    if names:
        kwargs["vocab"] = SideFeatures.vocab_of({n: SIDE_FEATURES[n](d.items, d.fold.n_items) for n in names})
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"config invalid value at 'models.{name}': {exc}") from None


def build(cfg: ProjectConfig, d: RunData, overrides: dict | None = None) -> Parts:
    """Model and embeddings from the run seed; data-aware methods see the training part once;
    CEL gets its schedule. Every candidate and the refit start from the same random state."""
    d.generator = set_determinism(d.key.seed, d.threads)
    model = build_model(cfg, d)
    user_emb, item_emb = build_embeddings(cfg, d.key, d.fold.n_users, d.fold.n_items, d.generator, overrides)
    col = {c: torch.tensor(d.train[c].to_numpy()) for c in ("user", "item", "rating")}   # copies
    for emb, own, other, n_own, n_other in ((user_emb, "user", "item", d.fold.n_users, d.fold.n_items),
                                            (item_emb, "item", "user", d.fold.n_items, d.fold.n_users)):
        if isinstance(emb, DataAware):     # AE/PreHash: the warmest entities; HashGNN: pretraining
            emb.fit_data(TrainingData(col[own].long(), col[other].long(), col["rating"].float(), n_own, n_other))
    # PreHash with weights: history (D.1, Table 3) reads its entities' history from the replay feed's buffers
    schedules = PreHashHistory.for_embeddings(user_emb, item_emb)
    for side, emb in clustered_sides(user_emb, item_emb):
        init_clustering(emb, side, d.items, d.train, frozen_path(cfg, d.key, emb.params))
        # CEL-Lite (Section 3.4) runs its own online schedule on the replay feed's buffers
        if isinstance(emb, CELLiteEmbedding) and FeedConfig.from_dict(cfg.task(d.key.task).get("feed")).kind != "replay":
            raise ConfigError(f"config invalid value at 'tasks.{d.key.task}.feed.kind': method {d.key.method} "
                              f"(CEL-Lite) needs the 'replay' feed (its experience-replay buffers)")
        schedules.append(LiteSchedule(side, d.key.seed) if isinstance(emb, CELLiteEmbedding) else ClusterSchedule(side))
    return Parts(model, user_emb, item_emb, schedules)


# --------------------------------------------------------------------------------- train
def _age_bands(cfg: ProjectConfig, d: RunData, ds: dict) -> np.ndarray:
    """ML-100k: the user's age band from u.user (cel.models.saml)."""
    from cel.data.sources import SOURCES
    from cel.models.saml import user_scenarios as age_bands

    return age_bands(Path(cfg.archives_dir) / SOURCES["ml-100k"].archive, d.fold.n_users)[0][:, 0].numpy()


def _home_scenarios(cfg: ProjectConfig, d: RunData, ds: dict) -> np.ndarray:
    """A power-law stream: the scenario the generator draws most of the user's rows in."""
    from cel.data.stream_source import home_scenarios
    from cel.models.saml import N_SCENARIOS

    table = paths.variant_dir(cfg.results_dir, d.key.dataset, d.key.variant) / "interactions.parquet"
    return home_scenarios(d.key.dataset, ds, table, d.fold.n_users, N_SCENARIOS)


def _home_categories(cfg: ProjectConfig, d: RunData, ds: dict) -> np.ndarray:
    """Amazon: the top-level category (below the data set's own) most of the user's *training* rows
    are in, the K-1 most frequent ones named and the rest "other" (cel.data.amazon_scenarios)."""
    from cel.data.amazon_scenarios import home_categories
    from cel.models.saml import N_SCENARIOS

    train = d.tables["train"]          # training rows only: never the validation or test rows
    return home_categories(d.items, train.users.numpy(), train.items.numpy(), d.fold.n_users, N_SCENARIOS)[0]


#: source (a dataset kind's parser, or the kind itself) -> builder of every user's scenario id, 0 = unknown
SCENARIO_SOURCES = {"ml-100k": _age_bands, "stream": _home_scenarios, "amazon": _home_categories}


def user_scenarios(cfg: ProjectConfig, d: RunData) -> tuple[torch.Tensor, torch.Tensor]:
    """((N, 1) scenario ids 1..K of every user, 0 = unknown; mask), SAML's user feature, built by the
    dataset's entry of :data:`SCENARIO_SOURCES`."""
    from cel.data.sources import SOURCES

    name = d.key.dataset
    ds = cfg.dataset(name)
    source = SOURCES[ds["kind"]].parser if ds["kind"] in SOURCES else ds["kind"]
    if source not in SCENARIO_SOURCES:
        raise ConfigError(f"config invalid value at 'datasets.{name}.kind': {ds['kind']!r} has no user scenarios "
                          f"(SAML's scenario is defined for ml-100k, the u.user age band, stream, the home scenario, "
                          f"and the Amazon kinds, the home category)")
    ids = torch.as_tensor(SCENARIO_SOURCES[source](cfg, d, ds), dtype=torch.int64)[:, None]
    return ids, ids > 0


USER_FEATURES = {"scenario": user_scenarios}      # name -> builder (cfg, run data) of (N, F) user fields


def batch_context(feed_cfg: FeedConfig, d: RunData, model, cfg: ProjectConfig | None = None) -> BatchContext | None:
    H = feed_cfg.history or model.history_len
    feats = {name: SIDE_FEATURES[name](d.items, d.fold.n_items) for name in model.side_features}
    users = {name: USER_FEATURES[name](cfg, d) for name in getattr(model, "user_features", ())}
    rows = tuple(getattr(model, "row_features", ()))
    return BatchContext(d.tables["train"], H, feats, users, rows) if (H or feats or users or rows) else None


def train(cfg: ProjectConfig, d: RunData, parts: Parts, out_dir: Path, log, ckpt_name: str = "checkpoint.pt",
          callbacks: tuple = ()) -> Trainer:
    """Fit with the task's feed; validation (never test) selects the step; resume from a checkpoint.
    ``callbacks``: extra trainer callbacks (an Optuna trial's pruning reporter)."""
    feed_cfg = FeedConfig.from_dict(cfg.task(d.key.task).get("feed"))
    ctx = batch_context(feed_cfg, d, parts.model, cfg)
    feed = make_feed(feed_cfg, d.tables["train"], d.key.seed, ctx)
    val = make_batch(d.tables["val"], None, ctx, with_pairs=True) if len(d.tables["val"]) else None

    def evaluate(tr: Trainer) -> dict:
        if val is None:
            return {}
        pred = predict_all(tr.model, tr.user_emb, tr.item_emb, val)
        return {f"val_{k}": v for k, v in d.task.metrics(pred, val.labels).items()}

    ckpt = out_dir / ckpt_name
    trainer = Trainer(d.task, feed, parts.model, parts.user_emb, parts.item_emb, d.train_cfg,
                      reg=cfg.model(d.key.model).reg, evaluate=evaluate,
                      callbacks=[GradientAveraging(d.train_cfg.grad_avg_scope), MethodSteps(), *parts.schedules,
                                 *callbacks], log=log,
                      checkpoint_path=ckpt if d.train_cfg.checkpoint_every else None)
    if d.train_cfg.checkpoint_every and ckpt.exists():
        trainer.load_checkpoint(ckpt)
    trainer.fit()
    return trainer


# ------------------------------------------------------------------------------ evaluate
def seen_in_training(table: InteractionTable, train: InteractionTable) -> torch.Tensor:
    """(D,) rows whose user and item both occur in training (the paper's conversion protocol)."""
    u = torch.bincount(train.users, minlength=train.n_users) > 0
    i = torch.bincount(train.items, minlength=train.n_items) > 0
    return torch.nonzero(u[table.users] & i[table.items]).squeeze(1)


def evaluate(d: RunData, tr: Trainer) -> dict:
    """Final metrics of the selected model as stored at test time; test is scored once, here."""
    out: dict = {"metrics": {}}
    ctx = tr.feed.context
    with torch.no_grad(), test_time(tr.user_emb, tr.item_emb):
        for name, table in d.tables.items():
            if not len(table):
                continue
            rows = seen_in_training(table, d.tables["train"]) if d.task.kind == "conversion" and name == "test" else None
            batch = make_batch(table, rows, ctx, with_pairs=rows is None)
            pred = predict_all(tr.model, tr.user_emb, tr.item_emb, batch)
            out["metrics"].update({f"{name}_{k}": v for k, v in d.task.metrics(pred, batch.labels).items()})
            if name == "test" and d.task.kind == "regression":
                counts = np.bincount(d.tables["train"].items.numpy(), minlength=table.n_items)
                out["buckets"] = bucket_mse(pred.numpy(), batch.labels.numpy(), counts[batch.items.numpy()], BUCKET_EDGES)
    if tr.history.progressive:
        out["metrics"].update({k: v for k, v in tr.history.progressive[-1].items() if k.startswith("progressive_")})
    return out


# --------------------------------------------------------------------------------- write
def curves_frame(tr: Trainer) -> pd.DataFrame:
    h = tr.history
    curves = pd.DataFrame({"step": h.step, "loss": h.loss, "train_loss": h.train_loss})
    for extra in (pd.DataFrame([{"step": s, **m} for s, m in zip(h.eval_step, h.eval)]), pd.DataFrame(h.progressive)):
        if len(extra):
            curves = curves.merge(extra, on="step", how="left")
    return curves


def cluster_record(tr: Trainer, parts: Parts, out_dir: Path) -> dict:
    """Cluster sizes, moves and splits per clustered side; the assignments go to a parquet file."""
    info, frames = {}, []
    for (side, emb), sched in zip(clustered_sides(tr.user_emb, tr.item_emb), parts.schedules):
        info[side] = {"final_clusters": emb.n_clusters, "max_clusters": emb.max_clusters,
                      "cluster_sizes": emb.cluster_sizes().tolist(), "reassign_moves": sched.moves,
                      "splits": len(sched.splits), "personalized_at": sched.personalized_at,
                      **({"ops": dict(sched.ops)} if hasattr(sched, "ops") else {}),          # CEL-Lite's counters
                      **({"nbytes": emb.nbytes()} if hasattr(emb, "nbytes") else {})}
        frames.append(pd.DataFrame({"side": side, "entity": np.arange(emb.num_entities),
                                    "cluster": emb.assignments().numpy()}))
    if frames:
        write_parquet(pd.concat(frames), out_dir / "assignments.parquet")
    return info


def size_metrics(tr: Trainer, n_items: int) -> dict:
    u, i = tr.user_emb, tr.item_emb
    return {"embedding_params": u.num_parameters() + i.num_parameters(), "item_embedding_params": i.num_parameters(),
            "user_embedding_params": u.num_parameters(), "item_embedding_rows": i.embedding_rows(),
            "item_compression_rows": 100.0 * i.embedding_rows() / n_items,
            "item_compression_real": 100.0 * i.num_parameters() / (n_items * i.dim)}


def write(cfg: ProjectConfig, d: RunData, chosen: Fitted, final: Fitted, trials: list[dict], results: dict,
          out_dir: Path, wall: float) -> dict:
    """metrics.json (last) and the files beside it. ``chosen`` is the selected model trained on
    train minus validation, ``final`` the reported one (``chosen`` itself without refit)."""
    resolved = cfg.resolved_run(d.key)
    if chosen.data.train_cfg != d.train_cfg:        # a tuned candidate's train.* settings (lr...)
        resolved["train"] = {**resolved["train"], **split_params(chosen.params)[1]}
    tr, sel = final.trainer, chosen.trainer
    clusters = cluster_record(tr, final.parts, out_dir)
    write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=True))
    write_parquet(curves_frame(sel), out_dir / "curves.parquet")          # carries the validation curve
    if final is not chosen:
        write_parquet(curves_frame(tr), out_dir / "refit_curves.parquet")
    metrics = {**results["metrics"], **size_metrics(tr, d.fold.n_items), "steps": sel.step,
               "selected_step": sel.selected_step,
               **({"refit_steps": tr.step} if final is not chosen else {}),
               **{f"final_clusters_{side}": c["final_clusters"] for side, c in clusters.items()}}
    record = {
        "run": d.key.as_dict(), "task": d.task.kind, "metrics": metrics,
        "timing": {"step_seconds": tr.history.step_seconds, "wall_seconds": wall},   # not deterministic
        "clusters": clusters,
        "selection": {"params": chosen.params, "candidates": trials},
        "test_mse_by_item_interactions": results.get("buckets", {}),     # Figure 4
        "tags": {"git_commit": git_commit(), "config_hash": config_hash(resolved), "data_sha256": d.data_sha,
                 "source_sha256": source_sha256(paths.prepared_dir(cfg.results_dir, d.key.dataset) / "meta.json"),
                 "n_users": d.fold.n_users, "n_items": d.fold.n_items, "n_train": len(final.data.tables["train"]),
                 "n_test": len(d.tables["test"]), "threads": d.threads},
        "params": resolved,
    }
    write_json(out_dir / "metrics.json", record)   # last: its existence means the run is complete
    for stale in (*out_dir.glob("checkpoint*.pt"), *out_dir.glob(".checkpoint*.tmp")):   # a kill mid-write
        stale.unlink(missing_ok=True)
    return record


# ------------------------------------------------------------------------ select / refit
@dataclass
class Fitted:
    """A trained candidate: its hand-grid parameters, its parts and trainer, the data it saw."""

    params: dict
    parts: Parts
    trainer: Trainer
    data: RunData


TRAIN_PREFIX = "train."


def split_params(params: dict) -> tuple[dict, dict]:
    """A candidate's (method parameters, training settings): ``train.<setting>`` keys are the latter."""
    method = {k: v for k, v in params.items() if not k.startswith(TRAIN_PREFIX)}
    train_over = {k[len(TRAIN_PREFIX):]: v for k, v in params.items() if k.startswith(TRAIN_PREFIX)}
    return method, train_over


def with_train(d: RunData, train_over: dict) -> RunData:
    """``d`` under a candidate's training settings (lr, optimizer...); the data are shared."""
    if not train_over:
        return d
    try:
        return replace(d, train_cfg=replace(d.train_cfg, **train_over))
    except TypeError as exc:
        raise ConfigError(f"config invalid value at 'train': {exc}") from None


def fit_candidate(cfg: ProjectConfig, d: RunData, params: dict, out_dir: Path, log, ckpt_name: str = "checkpoint.pt",
                  callbacks: tuple = ()) -> Fitted:
    """One candidate (method parameters and ``train.*`` settings) trained on train minus validation."""
    method, train_over = split_params(params)
    dc = with_train(d, train_over)
    parts = build(cfg, dc, method)
    return Fitted(params, parts, train(cfg, dc, parts, out_dir, log, ckpt_name, callbacks), dc)


def candidates(space: dict[str, list]) -> list[dict]:
    """Every combination of a hand grid, in a fixed order ([{}] for no grid)."""
    names = sorted(space)
    return [dict(zip(names, values)) for values in product(*(space[n] for n in names))]


def select(cfg: ProjectConfig, d: RunData, out_dir: Path, log, fixed: dict | None = None) -> tuple[Fitted, list[dict]]:
    """Train every candidate on train minus validation; validation alone picks the step (inside
    the trainer) and the candidate (first best on ties). Returns the winner and every trial.
    ``fixed``: the one candidate (a study's best parameters) instead of the block's hand grid."""
    cands = [fixed] if fixed is not None else candidates(cfg.method_search(d.key.method, d.key))
    key = f"val_{d.task.primary}"
    best, trials = None, []
    for i, params in enumerate(cands):
        try:
            fitted = fit_candidate(cfg, d, params, out_dir, log, f"checkpoint.c{i}.pt" if len(cands) > 1 else "checkpoint.pt")
        except FloatingPointError as exc:          # a diverging candidate of a grid loses; alone it is an error
            if len(cands) == 1:
                raise
            trials.append({"params": params, key: None, "diverged": str(exc)})
            log(f"[cel] candidate {i + 1}/{len(cands)} {params}: diverged ({exc})")
            continue
        tr = fitted.trainer
        score = float(tr.best_val) if tr.best_state is not None else None     # None: nothing was validated
        trials.append({"params": params, key: score, "selected_step": tr.selected_step, "steps": tr.step})
        if len(cands) > 1:
            log(f"[cel] candidate {i + 1}/{len(cands)} {params}: {key}={tr.best_val:.4f} at step {tr.selected_step}")
        if best is None or d.task.better(tr.best_val, best.trainer.best_val):
            best = fitted
    if best is None:
        raise FloatingPointError(f"run {d.key}: every candidate of the grid diverged ({len(cands)})")
    return best, trials


def refit(cfg: ProjectConfig, d: RunData, chosen: Fitted, out_dir: Path, log) -> Fitted:
    """The chosen candidate trained again on the whole training fold (train + validation slice)
    for the selected number of steps, from the same seed; nothing is evaluated during it."""
    steps = chosen.trainer.selected_step
    d = chosen.data                                     # the candidate's training settings
    whole = d.fold.train.reset_index(drop=True)
    if cfg.variant(d.key.variant).get("split") == "chrono":   # time-ordered stream: the same passes over it
        steps = -(-steps * len(whole) // max(1, len(d.train)))
    tables = {"train": InteractionTable.from_frame(whole, d.fold.n_users, d.fold.n_items, d.task.labels),
              "val": InteractionTable.from_frame(whole.iloc[:0], d.fold.n_users, d.fold.n_items, d.task.labels),
              "test": d.tables["test"]}
    tcfg = replace(d.train_cfg, steps=steps, val_fraction=0.0, patience=0, min_steps=0, eval_every=steps)
    dr = replace(d, train=whole, tables=tables, train_cfg=tcfg)
    log(f"[cel] refit on the whole training fold ({len(whole)} interactions) for {steps} steps")
    parts = build(cfg, dr, split_params(chosen.params)[0])
    return Fitted(chosen.params, parts, train(cfg, dr, parts, out_dir, log, "checkpoint.refit.pt"), dr)


def execute_run(cfg: ProjectConfig, key: RunKey, out_dir: str | Path, threads: int | None = None, log=None,
                fixed: dict | None = None) -> dict:
    """load → select → refit → evaluate → write; returns the metrics.json record. ``fixed``: the
    parameters chosen by the run's Optuna study (its best_params.yaml), instead of a hand grid."""
    out_dir, t0 = Path(out_dir), time.perf_counter()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    d = load(cfg, key, threads)
    log(f"[cel] run {key}: {d.fold.n_users} users, {d.fold.n_items} items, {len(d.tables['train'])} train / "
        f"{len(d.tables['val'])} val / {len(d.tables['test'])} test interactions, {d.threads} thread(s)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.method_tune(key) is not None and fixed is None:
        raise ConfigError(f"run {key}: its method is tuned (grid.tune.{key.method}); pass the study's "
                          f"best_params.yaml (cel train --params)")
    chosen, trials = select(cfg, d, out_dir, log, fixed)
    results = evaluate(d, chosen.trainer)
    final = chosen
    if d.train_cfg.refit and len(d.tables["val"]):
        final = refit(cfg, d, chosen, out_dir, log)
        held = {(k if k.startswith("val_") else f"holdout_{k}"): v for k, v in results["metrics"].items()}
        results = evaluate(final.data, final.trainer)
        results["metrics"].update(held)
    record = write(cfg, d, chosen, final, trials, results, out_dir, time.perf_counter() - t0)
    main = f"test_{d.task.primary}"
    log(f"[cel] done {key}: {main}={record['metrics'][main]:.4f} ({record['timing']['wall_seconds']:.1f}s)")
    return record

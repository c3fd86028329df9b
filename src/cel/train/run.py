"""One run = dataset × variant × model × method × compression × fold.

Writes into the run folder: ``config.yaml`` (resolved), ``curves.csv`` (per-step loss, periodic
test MSE), and last, atomically, ``metrics.json`` (the source of truth). A run killed halfway
leaves no ``metrics.json``; running it again completes it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from cel import paths
from cel.config import ProjectConfig, RunSpec, config_hash
from cel.data.pipeline import load_fold
from cel.embeddings import EMBEDDINGS, ClusteredEmbedding, DataAware, TrainingData, test_time
from cel.embeddings.full import FullEmbedding
from cel.io import write_json, write_text, write_parquet
from cel.metrics import bucket_mse, mse
from cel.models import MODELS
from cel.models.pairs import PairIndex, sort_pairs
from cel.provenance import git_commit
from cel.train.grad_avg import GradientAveraging
from cel.train.method_steps import MethodSteps
from cel.train.schedule import ClusterSchedule
from cel.train.trainer import FullBatchTrainer, score


def _pairs(frame: pd.DataFrame, n_users: int, n_items: int) -> tuple[PairIndex, torch.Tensor]:
    u, i, r = frame["user"].to_numpy(), frame["item"].to_numpy(), frame["rating"].to_numpy()
    order = sort_pairs(u, i)
    return PairIndex.build(u[order], i[order], n_users, n_items), torch.as_tensor(r[order], dtype=torch.float32)


BUCKET_EDGES = [0, 1, 5, 10, 20, 50, 100, 200, 400, 800, 2000]


def holdout(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a validation set off the training fold (never the test fold)."""
    if fraction <= 0:
        return frame, frame.iloc[:0]
    mask = np.random.default_rng(seed).random(len(frame)) < fraction
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def set_determinism(seed: int, threads: int) -> torch.Generator:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def build(cfg: ProjectConfig, spec: RunSpec, n_users: int, n_items: int, generator: torch.Generator):
    """(model, user embedding, item embedding) of a run.

    Table 2/7 protocol: only item embeddings are compressed, users stay full; a method whose
    parameters say ``entities: user|both`` compresses that side too.
    """
    mcfg = cfg.model(spec.model)
    model = MODELS[spec.model](nonneg=mcfg.nonneg)
    method = EMBEDDINGS[cfg.method_class(spec.method)]
    params = method.Params.from_dict(cfg.method_params(spec.method, spec), key=f"methods.{spec.method}")
    sides = getattr(params, "entities", "item")
    cr = float(spec.compression)
    full = FullEmbedding.Params()
    user_emb = (method(n_users, mcfg.rank, cr, params, generator) if sides in ("user", "both")
                else FullEmbedding(n_users, mcfg.rank, 100.0, full, generator))
    item_emb = (method(n_items, mcfg.rank, cr, params, generator) if sides in ("item", "both")
                else FullEmbedding(n_items, mcfg.rank, 100.0, full, generator))
    return model, user_emb, item_emb


def rule_based_assignment(kind: str, items: pd.DataFrame, train: pd.DataFrame, n_items: int,
                          budget: int) -> torch.Tensor:
    """Table 5 initialisations: by (first) genre, or items partitioned evenly by average rating."""
    if kind == "genre":
        first = items.sort_values("item")["genres"].fillna("").str.split("|").str[0]
        codes = pd.factorize(first)[0]
        return torch.as_tensor(codes % budget, dtype=torch.long)
    mean = train.groupby("item")["rating"].mean().reindex(range(n_items))
    mean = mean.fillna(train["rating"].mean()).to_numpy()
    ranks = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
    return torch.as_tensor(ranks * budget // n_items, dtype=torch.long)


def init_clustering(emb, params, side: str, items: pd.DataFrame, train: pd.DataFrame) -> None:
    """Apply a rule-based initial clustering or a frozen one from an earlier run (Tables 5, 11)."""
    if params.frozen_assignments:
        table = pd.read_parquet(params.frozen_assignments)
        table = table[table["side"] == side].sort_values("entity")
        if len(table) != emb.num_entities:
            raise ValueError(f"{params.frozen_assignments}: {len(table)} {side} assignments, "
                             f"expected {emb.num_entities}")
        emb.set_assignments(torch.tensor(table["cluster"].to_numpy(), dtype=torch.long))
    elif params.init != "random":
        if side != "item":
            raise ValueError("rule-based initialisation is defined for items only")
        emb.set_assignments(rule_based_assignment(params.init, items, train, emb.num_entities, emb.max_clusters))


def clustered_sides(user_emb, item_emb) -> list[tuple[str, "ClusteredEmbedding"]]:
    return [(side, e) for side, e in (("user", user_emb), ("item", item_emb)) if isinstance(e, ClusteredEmbedding)]


def execute_run(cfg: ProjectConfig, spec: RunSpec, out_dir: str | Path, threads: int | None = None,
                log=None) -> dict:
    out_dir = Path(out_dir)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    threads = threads or cfg.train.threads
    resolved = cfg.resolved_run(spec)
    t_start = time.perf_counter()
    data, data_sha = load_fold(cfg, spec)
    gen = set_determinism(cfg.train.seed, threads)
    model, user_emb, item_emb = build(cfg, spec, data.n_users, data.n_items, gen)
    train, val = holdout(data.train, cfg.train.val_fraction, seed=cfg.train.seed + 1000 * spec.fold)
    train_pairs, train_y = _pairs(train, data.n_users, data.n_items)
    test_pairs, test_y = _pairs(data.test, data.n_users, data.n_items)
    val_pairs, val_y = _pairs(val, data.n_users, data.n_items) if len(val) else (None, None)
    log(f"[cel] run {spec.key}: {data.n_users} users, {data.n_items} items, "
        f"{len(train_pairs)} train / {len(test_pairs)} test interactions, {threads} thread(s)")

    def evaluate(t: FullBatchTrainer | None = None) -> dict:
        u, i = (t.user_emb, t.item_emb) if t is not None else (user_emb, item_emb)
        out = {"test_mse": mse(score(model, u, i, test_pairs), test_y)}
        if val_pairs is not None:
            out["val_mse"] = mse(score(model, u, i, val_pairs), val_y)
        return out

    items = pd.read_parquet(paths.variant_dir(cfg.results_dir, spec.dataset, spec.variant) / "items.parquet")
    def col(name, dtype):             # a copy: the frame's arrays are read-only
        return torch.tensor(train[name].to_numpy(), dtype=dtype)

    for emb, own, other, n_own, n_other in ((user_emb, "user", "item", data.n_users, data.n_items),
                                            (item_emb, "item", "user", data.n_items, data.n_users)):
        if isinstance(emb, DataAware):     # AE/PreHash: the warmest entities; HashGNN: pretraining
            emb.fit_data(TrainingData(col(own, torch.long), col(other, torch.long), col("rating", torch.float32),
                                      n_own, n_other))
    schedules: list = []
    for side, emb in clustered_sides(user_emb, item_emb):
        init_clustering(emb, emb.params, side, items, train)
        schedules.append(ClusterSchedule(side))
    trainer = FullBatchTrainer(model, user_emb, item_emb, train_pairs, train_y, cfg.train,
                               reg=cfg.model(spec.model).reg, evaluate=None, callbacks=[GradientAveraging(), MethodSteps(), *schedules], log=log)
    trainer.evaluate = lambda: evaluate(trainer)
    hist = trainer.fit()
    user_emb, item_emb = trainer.user_emb, trainer.item_emb   # the selected (best-val) snapshot
    with torch.no_grad(), test_time(user_emb, item_emb):     # the model as stored at test time
        test_pred_t = score(model, user_emb, item_emb, test_pairs)
        final = {"test_mse": mse(test_pred_t, test_y)}
        if val_pairs is not None:
            final["val_mse"] = mse(score(model, user_emb, item_emb, val_pairs), val_y)
        final_test = final["test_mse"]
        train_mse = mse(score(model, user_emb, item_emb, train_pairs), train_y)
        item_counts = np.bincount(train["item"].to_numpy(), minlength=data.n_items)
        test_pred = test_pred_t.numpy()
        buckets = bucket_mse(test_pred, test_y.numpy(), item_counts[test_pairs.items.numpy()], BUCKET_EDGES)
    wall = time.perf_counter() - t_start

    curves = pd.DataFrame({"step": hist.step, "loss": hist.loss, "train_mse": hist.train_mse})
    evals = pd.DataFrame([{"step": s, **m} for s, m in zip(hist.eval_step, hist.eval)])
    if len(evals):
        curves = curves.merge(evals, on="step", how="left")
    cluster_info, tables = {}, []
    for (side, emb), sched in zip(clustered_sides(user_emb, item_emb), schedules):
        sizes = emb.cluster_sizes().tolist()
        cluster_info[side] = {"final_clusters": emb.n_clusters, "max_clusters": emb.max_clusters,
                              "cluster_sizes": sizes, "reassign_moves": sched.moves,
                              "splits": len(sched.splits), "personalized_at": sched.personalized_at}
        tables.append(pd.DataFrame({"side": side, "entity": np.arange(emb.num_entities),
                                    "cluster": emb.assignments().numpy()}))
    if tables:
        write_parquet(pd.concat(tables), out_dir / "assignments.parquet")
    write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=True))
    write_parquet(curves, out_dir / "curves.parquet")
    metrics = {
        "test_mse": final_test,
        "train_mse": train_mse,
        "embedding_params": user_emb.num_parameters() + item_emb.num_parameters(),
        "item_embedding_params": item_emb.num_parameters(),
        "user_embedding_params": user_emb.num_parameters(),
        "item_embedding_rows": item_emb.embedding_rows(),
        "item_compression_rows": 100.0 * item_emb.embedding_rows() / data.n_items,
        "item_compression_real": 100.0 * item_emb.num_parameters() / (data.n_items * item_emb.dim),
        "steps": len(hist.step),
        "selected_step": trainer.best_step if trainer.best_state is not None else len(hist.step),
        **({"val_mse": final["val_mse"]} if "val_mse" in final else {}),
        **{f"final_clusters_{side}": c["final_clusters"] for side, c in cluster_info.items()},
    }
    timing = {"step_seconds": hist.step_seconds, "wall_seconds": wall}
    record = {
        "run": resolved["run"],
        "metrics": metrics,
        "timing": timing,   # not deterministic; kept apart from the metrics
        "clusters": cluster_info,
        "test_mse_by_item_interactions": buckets,     # Figure 4
        "tags": {"git_commit": git_commit(), "config_hash": config_hash(resolved), "data_sha256": data_sha,
                 "n_users": data.n_users, "n_items": data.n_items,
                 "n_train": len(train_pairs), "n_test": len(test_pairs), "threads": threads},
        "params": resolved,
    }
    write_json(out_dir / "metrics.json", record)   # last: its existence means the run is complete
    log(f"[cel] done {spec.key}: test_mse={final_test:.4f} train_mse={train_mse:.4f} ({wall:.1f}s)")
    return record

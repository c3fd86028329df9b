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

from cel.config import ProjectConfig, RunSpec, config_hash
from cel.data.pipeline import load_fold
from cel.embeddings import EMBEDDINGS
from cel.embeddings.full import FullEmbedding
from cel.io import write_json, write_text, write_parquet
from cel.metrics import mse
from cel.models import MODELS
from cel.models.pairs import PairIndex, sort_pairs
from cel.provenance import git_commit
from cel.train.trainer import FullBatchTrainer, score


def _pairs(frame: pd.DataFrame, n_users: int, n_items: int) -> tuple[PairIndex, torch.Tensor]:
    u, i, r = frame["user"].to_numpy(), frame["item"].to_numpy(), frame["rating"].to_numpy()
    order = sort_pairs(u, i)
    return PairIndex.build(u[order], i[order], n_users, n_items), torch.as_tensor(r[order], dtype=torch.float32)


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
    """(model, user embedding, item embedding) of a run. Table 2/7 protocol: users stay full."""
    mcfg = cfg.model(spec.model)
    model = MODELS[spec.model](nonneg=mcfg.nonneg)
    method = EMBEDDINGS[spec.method]
    params = method.Params.from_dict(cfg.method_params(spec.method), key=f"methods.{spec.method}")
    user_emb = FullEmbedding(n_users, mcfg.rank, 100.0, FullEmbedding.Params(), generator)
    item_emb = method(n_items, mcfg.rank, float(spec.compression), params, generator)
    return model, user_emb, item_emb


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

    trainer = FullBatchTrainer(model, user_emb, item_emb, train_pairs, train_y, cfg.train,
                               reg=cfg.model(spec.model).reg, evaluate=None, log=log)
    trainer.evaluate = lambda: evaluate(trainer)
    hist = trainer.fit()
    user_emb, item_emb = trainer.user_emb, trainer.item_emb   # the selected (best-val) snapshot
    with torch.no_grad():
        final = evaluate()
        final_test = final["test_mse"]
        train_mse = mse(score(model, user_emb, item_emb, train_pairs), train_y)
    wall = time.perf_counter() - t_start

    curves = pd.DataFrame({"step": hist.step, "loss": hist.loss, "train_mse": hist.train_mse})
    evals = pd.DataFrame([{"step": s, **m} for s, m in zip(hist.eval_step, hist.eval)])
    if len(evals):
        curves = curves.merge(evals, on="step", how="left")
    write_text(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=True))
    write_parquet(curves, out_dir / "curves.parquet")
    metrics = {
        "test_mse": final_test,
        "train_mse": train_mse,
        "embedding_params": user_emb.num_parameters() + item_emb.num_parameters(),
        "item_embedding_params": item_emb.num_parameters(),
        "user_embedding_params": user_emb.num_parameters(),
        "item_compression_real": 100.0 * item_emb.num_parameters() / (data.n_items * item_emb.dim),
        "steps": len(hist.step),
        "selected_step": trainer.best_step if trainer.best_state is not None else len(hist.step),
        **({"val_mse": final["val_mse"]} if "val_mse" in final else {}),
    }
    timing = {"step_seconds": hist.step_seconds, "wall_seconds": wall}
    record = {
        "run": resolved["run"],
        "metrics": metrics,
        "timing": timing,   # not deterministic; kept apart from the metrics
        "tags": {"git_commit": git_commit(), "config_hash": config_hash(resolved), "data_sha256": data_sha,
                 "n_users": data.n_users, "n_items": data.n_items,
                 "n_train": len(train_pairs), "n_test": len(test_pairs), "threads": threads},
        "params": resolved,
    }
    write_json(out_dir / "metrics.json", record)   # last: its existence means the run is complete
    log(f"[cel] done {spec.key}: test_mse={final_test:.4f} train_mse={train_mse:.4f} ({wall:.1f}s)")
    return record

"""One Optuna trial = one run on the fold's training part minus its validation slice.

The trial's parameters (method parameters and ``train.<setting>``) are suggested from the
configured space; the trainer reports its best validation value so far at every evaluation and
the trial is pruned when the pruner says so. Test data are never loaded into the objective's
decision: the value is the best validation score (the step validation selects). Each trial writes
``trials/t<number>/metrics.json`` (and its curve), which the MLflow mirror logs under the study.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import optuna
import yaml

from cel.config import ProjectConfig, config_hash
from cel.io import write_json, write_text
from cel.provenance import git_commit
from cel.runkey import RunKey
from cel.train.run import RunData, curves_frame, fit_candidate, load
from cel.train.trainer import Callback
from cel.tune.space import suggest


def trial_dir(study_dir: Path, number: int) -> Path:
    return Path(study_dir) / "trials" / f"t{number:04d}"


class PruneReporter(Callback):
    """Reports the best validation value so far at each evaluation; raises TrialPruned when told."""

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.last: float | None = None

    def on_eval(self, trainer, metrics: dict) -> None:
        if self.metric not in metrics:
            return
        best = trainer.best_val if trainer.best_state is not None else metrics[self.metric]
        best = metrics[self.metric] if trainer.task.better(metrics[self.metric], best) else best
        self.last = float(best)
        self.trial.report(float(best), trainer.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {trainer.step} ({self.metric}={best:.4f})")


class Objective:
    """Callable for ``study.optimize``; the fold is loaded once per worker process."""

    def __init__(self, cfg: ProjectConfig, key: RunKey, study_dir: str | Path, threads: int = 1, log=None):
        self.cfg, self.key, self.study_dir = cfg, key, Path(study_dir)
        self.space = cfg.method_tune(key)
        self.log = log or (lambda msg: print(msg, flush=True))
        self.data: RunData = load(cfg, key, threads)
        self.metric = f"val_{self.data.task.primary}"

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        params = suggest(trial, self.space)
        out = trial_dir(self.study_dir, trial.number)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        self.log(f"[tune] {self.key.key.rsplit('/', 1)[0]} trial {trial.number}: {params}")
        reporter = PruneReporter(trial, self.metric)
        try:
            fitted = fit_candidate(self.cfg, self.data, params, out, self.log, "checkpoint.pt", callbacks=(reporter,))
        except optuna.TrialPruned:
            (out / "checkpoint.pt").unlink(missing_ok=True)
            self.write(trial, params, None, reporter.last, time.perf_counter() - t0, "pruned")
            raise
        except FloatingPointError as exc:         # diverged (lr too high): hopeless, not a crash to retry
            (out / "checkpoint.pt").unlink(missing_ok=True)
            self.write(trial, params, None, reporter.last, time.perf_counter() - t0, "diverged")
            raise optuna.TrialPruned(str(exc)) from None
        tr = fitted.trainer
        if tr.best_state is not None:
            value = float(tr.best_val)
        elif tr.history.eval and self.metric in tr.history.eval[-1]:
            value = float(tr.history.eval[-1][self.metric])  # the schedule never settled: its last value
        else:
            raise RuntimeError(f"trial {trial.number}: no validation value (is the validation slice empty?)")
        self.write(trial, params, fitted, value, time.perf_counter() - t0, "complete")
        (out / "checkpoint.pt").unlink(missing_ok=True)
        return value

    def write(self, trial, params: dict, fitted, value: float | None, wall: float, state: str) -> None:
        """The trial's own metrics.json (complete or pruned): validation figures only, a trial never
        sees test. A pruned trial records the best validation value it reached and its step."""
        out = trial_dir(self.study_dir, trial.number)
        resolved = self.cfg.resolved_run(self.key)
        write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=True))
        metrics = {} if value is None else {self.metric: value}
        if fitted is not None:
            tr = fitted.trainer
            last_eval = tr.history.eval[-1] if tr.history.eval else {}
            curves_frame(tr).to_parquet(out / "curves.parquet", index=False)
            metrics.update({"selected_step": tr.selected_step, "steps": tr.step,
                            **{f"last_{k}": v for k, v in last_eval.items()}})
        write_json(out / "metrics.json", {
            "run": self.key.as_dict(), "task": self.data.task.kind, "state": state,
            "study": str(self.study_dir), "trial": trial.number,
            "metrics": metrics,
            "timing": {"wall_seconds": wall},
            "selection": {"params": params, "candidates": []},
            "tags": {"git_commit": git_commit(), "config_hash": config_hash(resolved),
                     "data_sha256": self.data.data_sha, "trial": trial.number, "state": state},
            "params": resolved,
        })

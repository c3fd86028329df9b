"""A study: its storage, seeded sampler and pruner, worker processes, retries, best_params.yaml.

``tune`` (the ``cel tune`` command, one Snakemake job per study) creates the study, starts
``workers`` processes of ``cel tune-worker`` that share the storage, and waits. Each worker runs
trials until the study has ``trials`` finished ones (complete or pruned), counting the running
ones, so that workers stop together. A trial that raises is marked failed and its parameters are
enqueued again (at most ``retries`` times: Optuna's RetryFailedTrialCallback, for every storage).
A trial whose worker died (killed, out of memory) stays RUNNING in the storage: when the workers
have exited, ``reap`` marks such trials failed, enqueues them again, and ``tune`` starts workers
once more. Storage: Optuna's journal file in the study folder by default (its file lock makes
parallel workers safe), or any RDB URL from the config (PostgreSQL for a shared store).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import optuna
import yaml

from cel.config import ProjectConfig, config_hash
from cel.io import write_text
from cel.runkey import RunKey
from cel.train.tasks import make_task

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
RETRY_ATTR = "retry_of"


def study_name(key: RunKey) -> str:
    return key.key.rsplit("/", 1)[0]


def storage_for(cfg: ProjectConfig, study_dir: Path):
    """The configured RDB URL, or a journal file in the study folder."""
    url = os.environ.get("CEL_OPTUNA_STORAGE") or cfg.raw["tuning"]["storage"]
    if url:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    from optuna.storages.journal import JournalFileBackend

    study_dir.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(study_dir / "journal.log")))


def direction(cfg: ProjectConfig, key: RunKey) -> str:
    entry = cfg.task(key.task)
    return "maximize" if make_task(entry["kind"]).higher_is_better else "minimize"


def sampler_seed(cfg: ProjectConfig, key: RunKey, worker: int) -> int:
    """Seeded TPE: the configured seed, a stable hash of the study and the worker index (parallel
    workers must not draw the same startup points)."""
    h = int(hashlib.sha256(study_name(key).encode()).hexdigest()[:8], 16)
    return (cfg.raw["tuning"]["sampler_seed"] + h + 7919 * worker) % 2**31


def open_study(cfg: ProjectConfig, key: RunKey, study_dir: Path, worker: int = 0) -> optuna.Study:
    t = cfg.raw["tuning"]
    sampler = optuna.samplers.TPESampler(seed=sampler_seed(cfg, key, worker), n_startup_trials=t["startup_trials"])
    pr = t["pruner"]
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=pr["startup_trials"], n_warmup_steps=0,
                                          n_min_trials=1) if pr["kind"] == "median" else optuna.pruners.NopPruner())
    return optuna.create_study(study_name=study_name(key), storage=storage_for(cfg, study_dir), sampler=sampler,
                               pruner=_Warmup(pruner, pr["warmup_evals"]), direction=direction(cfg, key),
                               load_if_exists=True)


class _Warmup(optuna.pruners.BasePruner):
    """Never prune before a trial has reported ``evals`` intermediate values."""

    def __init__(self, inner: optuna.pruners.BasePruner, evals: int):
        self.inner, self.evals = inner, evals

    def prune(self, study, trial) -> bool:
        return len(trial.intermediate_values) > self.evals and self.inner.prune(study, trial)


def count(study: optuna.Study, states) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def retry_failed(study: optuna.Study, trial: optuna.trial.FrozenTrial, retries: int) -> bool:
    """Enqueue a failed trial's parameters again unless it already used its retries."""
    chain, t = 0, trial
    while RETRY_ATTR in t.user_attrs and chain <= retries:
        chain += 1
        t = study.trials[t.user_attrs[RETRY_ATTR]]
    if chain >= retries:
        return False
    study.enqueue_trial(trial.params, user_attrs={RETRY_ATTR: trial.number}, skip_if_exists=False)
    return True


def run_worker(cfg: ProjectConfig, key: RunKey, study_dir: Path, worker: int, threads: int = 1) -> int:
    """Trials until the study has its budget of finished (and running) trials; returns how many ran."""
    from cel.tune.objective import Objective

    study = open_study(cfg, key, study_dir, worker)
    objective = Objective(cfg, key, study_dir, threads)
    budget, retries, ran = cfg.raw["tuning"]["trials"], cfg.raw["tuning"]["retries"], 0
    running = (optuna.trial.TrialState.RUNNING,)
    while True:
        waiting = count(study, (optuna.trial.TrialState.WAITING,))
        if not waiting and count(study, FINISHED + running) >= budget:
            return ran
        if len(study.get_trials(deepcopy=False)) >= budget * (retries + 2):     # failing over and over
            raise RuntimeError(f"study {study_name(key)}: {count(study, (optuna.trial.TrialState.FAIL,))} "
                               f"failed trials; giving up (see the worker's log)")

        def on_fail(st, frozen):
            if frozen.state == optuna.trial.TrialState.FAIL:
                retry_failed(st, frozen, retries)

        study.optimize(objective, n_trials=1, callbacks=[on_fail], catch=(Exception,), gc_after_trial=True)
        ran += 1


def reap(study: optuna.Study, retries: int) -> int:
    """Trials left RUNNING by a dead worker (no worker is alive now): failed, then enqueued again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        retry_failed(study, study._storage.get_trial(t._trial_id), retries)
        n += 1
    return n


def tune(cfg: ProjectConfig, key: RunKey, config_files: list[str], study_dir: str | Path, workers: int,
         threads: int = 1, log=None) -> dict:
    """Run the study with ``workers`` processes (restarted after a crash), then write best_params.yaml."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    study_dir = Path(study_dir)
    study = open_study(cfg, key, study_dir)
    budget, retries = cfg.raw["tuning"]["trials"], cfg.raw["tuning"]["retries"]
    for attempt in range(retries + 2):
        if count(study, FINISHED) >= budget:
            break
        n = min(workers, budget - count(study, FINISHED))        # a restart needs only the missing trials
        log(f"[tune] {study_name(key)}: {count(study, FINISHED)}/{budget} trials finished; starting {n} worker(s)")
        cmd = [sys.executable, "-m", "cel.cli", "tune-worker", *config_files, "--study", key.key,
               "--out", str(study_dir), "--threads", str(threads)]
        procs = [subprocess.Popen([*cmd, "--worker", str(attempt * workers + w)]) for w in range(n)]
        codes = [p.wait() for p in procs]
        reaped = reap(study, retries)
        if any(codes) or reaped:
            log(f"[tune] worker exit codes {codes}; {reaped} orphaned trial(s) failed and enqueued again")
    return write_best(cfg, key, study, study_dir)


def write_best(cfg: ProjectConfig, key: RunKey, study: optuna.Study, study_dir: Path) -> dict:
    states = {s.name.lower(): count(study, (s,)) for s in optuna.trial.TrialState}
    if not count(study, (optuna.trial.TrialState.COMPLETE,)):
        raise RuntimeError(f"study {study_name(key)}: no trial completed ({states}); see its trials/ logs")
    best = study.best_trial
    record = {"study": study_name(key), "direction": study.direction.name.lower(),
              "best_value": float(best.value), "best_trial": best.number, "params": dict(best.params),
              "trials": states, "config_hash": config_hash(cfg.resolved_study(key)),
              "storage": "journal" if not (os.environ.get("CEL_OPTUNA_STORAGE") or cfg.raw["tuning"]["storage"])
              else "rdb"}
    write_text(study_dir / "best_params.yaml", yaml.safe_dump(record, sort_keys=True))
    return record


def load_best(path: str | Path) -> dict:
    """The ``params`` of a best_params.yaml (the final runs' fixed candidate)."""
    return yaml.safe_load(Path(path).read_text())["params"]

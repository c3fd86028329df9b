"""The Snakemake workflow end to end on the smoke profile, with parallel jobs."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def _snakemake(workdir, *args, check=True):
    """Run snakemake; the target `all` goes first (--configfile/--config take several values)."""
    cmd = [str(SNAKEMAKE), "all", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and r.returncode != 0:
        raise AssertionError(r.stdout[-4000:] + r.stderr[-4000:])
    return r


@pytest.mark.slow
def test_smoke_workflow_parallel_mlflow_one_run_per_metrics(tmp_path):
    shutil.copy(REPO / "config" / "smoke.yaml", tmp_path / "smoke.yaml")
    _snakemake(tmp_path, "--cores", "4", "--configfile", str(tmp_path / "smoke.yaml"))
    res = tmp_path / "results" / "smoke"
    metrics = sorted(res.glob("runs/**/metrics.json"))
    assert len(metrics) >= 8
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{res / 'mlflow' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("cel-smoke")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == len(metrics)
    by_key = {r.data.tags["cel.run_key"]: r for r in runs}
    assert len(by_key) == len(metrics)
    for m in metrics:
        rec = json.loads(m.read_text())
        key = str(m.parent.relative_to(res / "runs"))
        assert by_key[key].data.metrics["test_mse"] == pytest.approx(rec["metrics"]["test_mse"])
    summary = pd.read_csv(res / "summary.csv")
    assert list(summary.columns[:10]) == ["task", "dataset", "variant", "model", "method", "compression", "fold",
                                          "seed", "metric", "value"]
    assert (summary["metric"] == "test_mse").sum() == len(metrics)
    tex = (res / "tables" / "table7.tex").read_text()
    assert "$^{n=5}$" in tex
    # nothing to do on a second invocation
    r = _snakemake(tmp_path, "--cores", "4", "--configfile", str(tmp_path / "smoke.yaml"), "-n")
    assert "Nothing to be done" in r.stdout + r.stderr


def test_workflow_rejects_bad_config_naming_the_key(tmp_path):
    prof = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    prof["train"]["setps"] = 10
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(prof))
    r = _snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "bad.yaml"), check=False)
    assert r.returncode != 0
    assert "train.setps" in r.stdout + r.stderr


def test_paper_grid_dry_run_lists_the_ml100k_runs(tmp_path):
    r = _snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "config.yaml"),
                   "--config", "only_datasets=ml-100k")
    out = r.stdout + r.stderr
    assert "train_run" in out and "ml-1m" not in out


def test_quick_profile_mirrors_in_one_batch_per_table(tmp_path):
    """The MLflow mirror is one job per table (plus one for runs no table reads), not one per run:
    131 per-run jobs spent a quarter of the quick profile's CPU time importing MLflow."""
    import re

    r = _snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "quick.yaml"))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", r.stdout, flags=re.M))
    n_tables = int(counts["make_table"])
    assert int(counts["train_run"]) > 100
    assert n_tables <= int(counts["mirror_mlflow"]) <= n_tables + 1, counts


@pytest.mark.slow
def test_profiles_sharing_the_archives_do_not_refetch(tmp_path):
    """The archive rule is profile-independent: a second profile on the same archives_dir finds
    the archive up to date (it used to refetch it, rerunning every run of the first profile)."""
    from conftest import MIRROR

    if not (MIRROR / "ml-100k.zip").exists():
        pytest.skip("ML-100k mirror not available")
    prof = {"archives_dir": str(tmp_path / "archives"), "datasets": {"ml-100k": {"kind": "ml-100k"}},
            "variants": {"original": {"kind": "original"}}, "methods": {"full": {}}, "tables": [],
            "grid": [{"datasets": ["ml-100k"], "methods": ["full"], "compressions": [100], "folds": [0]}]}
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**prof, "results_dir": str(tmp_path / name)}))
    target = str(tmp_path / "one" / "data" / "ml-100k" / "prepared" / "interactions.parquet")
    env_args = ("--cores", "1", "--configfile")
    r = subprocess.run([str(SNAKEMAKE), target, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        *env_args, str(tmp_path / "one.yaml")], capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "CEL_DATA_MIRROR": str(MIRROR)})
    assert r.returncode == 0, r.stderr[-3000:]
    dry = subprocess.run([str(SNAKEMAKE), target.replace("/one/", "/two/"), "-n", "-s", str(REPO / "Snakefile"),
                          "--directory", str(tmp_path), *env_args, str(tmp_path / "two.yaml")],
                         capture_output=True, text=True, timeout=600)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0 and "prepare_dataset" in out
    assert "download_archive" not in out


@pytest.mark.slow
def test_changed_dataset_entry_reruns_its_preparation(tmp_path):
    """A dataset's entry (a csv column mapping, a generator setting) is a parameter of its prepare
    job: changing it reruns the preparation, an unchanged profile has nothing to do."""
    prof = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    target = "results/smoke/data/synth/prepared/interactions.parquet"
    cmd = [str(SNAKEMAKE), target, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "1",
           "--configfile", str(path)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=600).returncode == 0
    r = subprocess.run(cmd + ["-n"], capture_output=True, text=True, timeout=600)
    assert "Nothing to be done" in r.stdout + r.stderr
    prof["datasets"]["synth"]["noise"] = 0.2
    path.write_text(yaml.safe_dump(prof))
    r = subprocess.run(cmd + ["-n"], capture_output=True, text=True, timeout=600)
    assert "prepare_dataset" in r.stdout and "Nothing to be done" not in r.stdout + r.stderr

"""The smoke workflow through SLURM (snakemake-executor-plugin-slurm, profiles/slurm) on the
single-node cluster of scripts/slurm/start.sh: every non-local job went through sbatch and shows
in sacct as COMPLETED, and every metrics.json equals a local run's. Run by `make test-slurm`
(scripts/slurm/test.sh), never by `make test`."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
LOCAL_RULES = {"download_archive", "aggregate_runs", "table_summary", "make_table", "mirror_mlflow", "mirror_study",
               "all"}

pytestmark = pytest.mark.skipif(not os.environ.get("SLURM_CONF") or not shutil.which("sbatch"),
                                reason="needs the cluster of scripts/slurm/start.sh (make test-slurm)")


def smoke_profile(root: Path) -> Path:
    prof = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    prof["results_dir"], prof["archives_dir"] = "results", str(root / "archives")
    path = root / "smoke.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def snakemake(workdir: Path, config: Path, *extra, timeout=1500):
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [SNAKEMAKE, "all", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *extra, "--configfile", str(config)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"})
    (workdir / "snakemake.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return r.stdout + r.stderr, time.time() - t0


def metrics(results: Path) -> dict:
    return {str(p.parent.relative_to(results)): json.loads(p.read_text())["metrics"]
            for p in sorted(results.glob("runs/**/metrics.json"))}


def test_smoke_workflow_through_slurm_equals_local(tmp_path):
    config = smoke_profile(tmp_path)
    local_log, local_s = snakemake(tmp_path / "local", config, "--cores", "2")

    prof = yaml.safe_load((REPO / "profiles/slurm/config.v8+.yaml").read_text())
    prof["default-resources"].update({"slurm_account": "cel", "slurm_partition": "debug"})
    prof["jobs"] = 4
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.v8+.yaml").write_text(yaml.safe_dump(prof))
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 5))
    slurm_log, slurm_s = snakemake(tmp_path / "slurm", config, "--workflow-profile", str(tmp_path / "profile"))

    # every job Snakemake ran outside localrules was submitted with sbatch ...
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", slurm_log))
    ran = re.findall(r"^(?:local)?rule (\w+):", slurm_log, flags=re.M)
    remote = [r for r in ran if r not in LOCAL_RULES]
    assert remote and len(submitted) == len(remote), (len(submitted), remote)
    # ... and sacct (slurmdbd) has each of them, COMPLETED with exit code 0
    sacct = subprocess.run(["sacct", "-n", "-P", "-X", "-S", since, "-o", "JobID,JobName,Comment,State,ExitCode,Elapsed,Submit"],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()
    rows = {line.split("|")[0]: line.split("|") for line in sacct}
    steps = subprocess.run(["sacct", "-n", "-P", "-S", since, "-o", "JobID,MaxRSS,Elapsed,State"],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()
    report = ["sacct -X -o JobID,JobName,Comment,State,ExitCode,Elapsed,Submit:"] + [rows[j] and "|".join(rows[j])
                                                                                      for j in sorted(rows, key=int)]
    report += ["sacct steps -o JobID,MaxRSS,Elapsed,State:"] + steps
    (tmp_path / "sacct.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    for jid in submitted.values():
        assert jid in rows, f"SLURM job {jid} missing from sacct"
        assert rows[jid][3] == "COMPLETED" and rows[jid][4] == "0:0", rows[jid]
        assert rows[jid][2].startswith("rule_"), rows[jid]
    rules_in_sacct = sorted(rows[j][2].split("_wildcards_")[0][5:] for j in submitted.values())
    assert rules_in_sacct == sorted(remote)

    # same outputs as the local run
    loc, slu = metrics(tmp_path / "local" / "results"), metrics(tmp_path / "slurm" / "results")
    assert loc and loc.keys() == slu.keys()
    assert loc == slu
    assert (tmp_path / "local/results/tables/table7.csv").read_text() == \
        (tmp_path / "slurm/results/tables/table7.csv").read_text()
    import pandas as pd                         # summary.csv: every row equal but the timing ones
    a, b = (pd.read_csv(tmp_path / d / "results/summary.csv") for d in ("local", "slurm"))
    timing = a["metric"].isin(["wall_seconds", "step_seconds"])
    assert a.drop(columns="value").equals(b.drop(columns="value"))
    assert a.loc[~timing, "value"].equals(b.loc[~timing, "value"])
    out = Path(os.environ.get("CEL_OPTIN_OUT", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / "slurm_sacct.txt").write_text("\n".join(report) + "\n")
    (out / "slurm_summary.json").write_text(json.dumps({
        "runs": len(loc), "sbatch_jobs": len(submitted), "local_rule_jobs": len(ran) - len(remote),
        "rules_via_sbatch": {r: rules_in_sacct.count(r) for r in sorted(set(rules_in_sacct))},
        "local_wall_s": round(local_s, 1), "slurm_wall_s": round(slurm_s, 1), "metrics_equal": loc == slu}, indent=1))

"""Executor profiles (issue 14): profiles/{default,slurm,kubernetes}/config.v8+.yaml size every rule
alike, and `snakemake -n` resolves the smoke workflow with each. The Kubernetes profile is NOT run
here (no cluster, no conda): its dry run talks to a local S3 stand-in (moto_server, from
$CEL_MOTO_SERVER or PATH; `python3 -m venv /tmp/motovenv && /tmp/motovenv/bin/pip install
'moto[server]'`), because the S3 storage plugin checks every output's existence in the bucket."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
PROFILES = ("default", "slurm", "kubernetes")


def load(name):
    return yaml.safe_load((REPO / "profiles" / name / "config.v8+.yaml").read_text())


def test_profiles_size_every_rule_alike():
    base = load("default")
    for name in PROFILES[1:]:
        p = load(name)
        assert p["set-resources"] == base["set-resources"] and p["default-resources"] == base["default-resources"], name
        assert p["set-threads"] == base["set-threads"], name
    assert {"mem_mb", "runtime", "cpus_per_task"} <= set(base["default-resources"])
    for rule, res in base["set-resources"].items():
        assert {"mem_mb", "runtime", "cpus_per_task"} <= set(res), rule


def dry(workdir, *extra, env=None):
    smoke = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
    smoke["results_dir"] = "results"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    r = subprocess.run([SNAKEMAKE, "all", "-n", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *extra,
                        "--configfile", str(workdir / "smoke.yaml")], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return r.stdout + r.stderr


def test_slurm_profile_resolves(tmp_path):
    out = dry(tmp_path, "--workflow-profile", str(REPO / "profiles/slurm"))
    assert "train_run" in out and "mem_mb=1500" in out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kubernetes_profile_resolves_against_local_s3(tmp_path):
    moto = os.environ.get("CEL_MOTO_SERVER") or shutil.which("moto_server") or "/tmp/motovenv/bin/moto_server"
    if not Path(moto).exists():
        pytest.skip("no moto_server (local S3 stand-in); see the module docstring")
    port = _free_port()
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except Exception:
                time.sleep(0.25)
        bucket = load("kubernetes")["default-storage-prefix"].split("//", 1)[1].split("/")[0]
        urllib.request.urlopen(urllib.request.Request(f"{url}/{bucket}", method="PUT"), timeout=10)
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        out = dry(tmp_path, "--workflow-profile", str(REPO / "profiles/kubernetes"), "--storage-s3-endpoint-url", url,
                  "--storage-s3-access-key", "test", "--storage-s3-secret-key", "test", env=env)
        assert "train_run" in out and "s3://" in out
        out_dir = Path(os.environ.get("CEL_OPTIN_OUT", tmp_path))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "kubernetes_dry_run.txt").write_text(out)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

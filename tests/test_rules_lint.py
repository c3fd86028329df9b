"""The workflow's rules (issue #14): `snakemake --lint` reports nothing on the paper grid, and every
rule's shell command calls the `cel` console script (not `{sys.executable} -m cel.cli`), which
resolves even when snakemake is started as .venv/bin/snakemake with the venv not activated."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import MIRROR, REPO

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
# a `shell:` directive and the string literals on the lines after it (the rules' only style)
SHELL_BLOCK = re.compile(r"^(?P<indent>[ \t]*)shell:[ \t]*\n(?P<body>(?:(?P=indent)[ \t]+[rf]?\".*\"[ \t]*\n)+)", re.M)


def _env(**extra):
    return {**os.environ, "CEL_DATA_MIRROR": str(MIRROR), **extra}


def _shell_commands():
    """(file, rule-source command text) of every shell: directive in the workflow."""
    out = []
    for f in RULE_FILES:
        text = f.read_text()
        for m in SHELL_BLOCK.finditer(text):
            out.append((f.name, "".join(re.findall(r"\"(.*)\"", m.group("body")))))
        # every shell: directive was understood (a command written otherwise would escape the check)
        assert len(re.findall(r"^[ \t]*shell:", text, re.M)) == len(SHELL_BLOCK.findall(text)), f
    return out


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["config/config.yaml", "config/paper.yaml", "config/quick.yaml"])
def test_snakemake_lint_reports_nothing(tmp_path, profile):
    # the Snakefile writes config.resolved.yaml/fetch.yaml while parsing: keep them out of results/
    r = subprocess.run([str(SNAKEMAKE), "--lint", "--configfile", profile, "--config",
                        f"results_dir={tmp_path / 'results'}", f"archives_dir={tmp_path / 'archives'}"],
                       cwd=REPO, capture_output=True, text=True, timeout=600, env=_env())
    out = r.stdout + r.stderr
    assert "Lints for" not in out, out[-6000:]
    assert r.returncode == 0, out[-6000:]


def test_rules_call_the_cel_entry_point():
    cmds = _shell_commands()
    assert len(cmds) >= 17, cmds          # every rule that runs something (data, train, report, figures)
    for name, cmd in cmds:
        assert not re.search(r"sys\.executable|python3?\b|-m cel|params\.cel", cmd), (name, cmd)
        assert re.match(r"cel [a-z-]+ ", cmd), (name, cmd)
    for f in RULE_FILES:
        assert "sys.executable} -m" not in f.read_text(), f


def test_every_shell_rule_has_log_threads_and_conda_and_profile_resources():
    """conda: and log: in the rule; threads and resources in the rule or in every profile."""
    profiles = {p.parent.name: yaml.safe_load(p.read_text()) for p in (REPO / "profiles").glob("*/config.v8+.yaml")}
    assert {"default", "slurm", "kubernetes"} <= set(profiles)
    rule_re = re.compile(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", re.M | re.S)
    shell_rules = []
    for f in RULE_FILES:
        for name, body in rule_re.findall(f.read_text()):
            if "shell:" not in body:
                continue
            shell_rules.append(name)
            assert "conda:" in body and "log:" in body, (f.name, name)
            for pname, p in profiles.items():
                assert "threads:" in body or name in p["set-threads"], (pname, name)
                assert "resources:" in body or name in p["set-resources"], (pname, name)
    assert len(shell_rules) == len(_shell_commands())


@pytest.mark.slow
def test_a_rule_finds_cel_without_the_venv_on_path(tmp_path):
    """.venv/bin/snakemake with a PATH that has no venv (not activated): the job's `cel` is the one
    beside the interpreter running Snakemake."""
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    smoke.update(results_dir=str(tmp_path / "results"), archives_dir=str(tmp_path / "archives"))
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    target = tmp_path / "results" / "data" / "synth" / "prepared" / "interactions.parquet"
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not (Path(p) / "cel").exists()) or "/usr/bin:/bin"
    r = subprocess.run([str(SNAKEMAKE), str(target), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        "--cores", "1", "--printshellcmds", "--configfile", str(tmp_path / "smoke.yaml")],
                       capture_output=True, text=True, timeout=600, env=_env(PATH=path, VIRTUAL_ENV=""))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert target.exists()
    assert re.search(r"(?:^|Shell command:)\s*cel prepare ", out, re.M), out[-4000:]

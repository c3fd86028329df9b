"""The README's library example runs as written (a stale example fails here)."""
import re

from conftest import REPO


def test_readme_library_example_runs(capsys):
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Library use"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md:library-use", "exec"), {})
    out = capsys.readouterr().out.split()
    assert out[0] == "10" and "16])" in out[-1]


def test_generated_blocks_match_the_results_snapshot():
    """Every number of the README's generated blocks comes from docs/results (a snapshot of a
    finished `make run`) and resources/deviations.yaml; a hand edit or a stale snapshot fails."""
    from cel.readme import blocks, render_readme

    text = (REPO / "README.md").read_text()
    assert render_readme(text, blocks(REPO / "docs" / "results")) == text, "run `make readme`"


def test_config_values_quoted_in_the_readme_match_the_config():
    """`train.KEY` = VALUE in the README is what config/config.yaml says."""
    import yaml

    train = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["train"]
    quoted = re.findall(r"`train\.(\w+)` = ([0-9.e-]+)", (REPO / "README.md").read_text())
    assert len(quoted) >= 4
    for key, value in quoted:
        assert float(value) == float(train[key]), f"README says train.{key} = {value}, config has {train[key]}"


def test_a_block_without_markers_is_an_error():
    import pytest

    from cel.readme import render_readme

    text = "a\n<!-- generated:results -->\nold\n<!-- end generated:results -->\nb\n"
    assert render_readme(text, {"results": "new\n"}) == text.replace("old", "new")
    with pytest.raises(ValueError, match="deviations"):
        render_readme(text, {"results": "x\n", "deviations": "y\n"})


def test_a_profile_time_block_comes_from_the_timed_run_and_its_benchmark_files(tmp_path):
    import json
    import subprocess
    import sys

    import pytest

    from cel.readme import profile_block, profile_snapshot

    res, snap = tmp_path / "results" / "quick", tmp_path / "snap"
    with pytest.raises(FileNotFoundError, match="wall.json"):
        profile_snapshot(res, snap, "quick")
    rc = subprocess.call([sys.executable, str(REPO / "scripts" / "timed.py"), str(res / "wall.json"), "--",
                          sys.executable, "-c", "sum(range(10**6))"], cwd=REPO)
    assert rc == 0
    for rule, cpu in (("train_run", [30.0, 90.0]), ("tune_study", [60.0])):
        for i, c in enumerate(cpu):
            f = res / "benchmarks" / rule / f"r{i}.tsv"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"s\tcpu_time\n{c + 1}\t{c}\n")
    (res / "runs" / "a").mkdir(parents=True)
    (res / "runs" / "a" / "metrics.json").write_text("{}")
    r = json.loads(profile_snapshot(res, snap, "quick").read_text())
    assert r["jobs"] == {"train_run": {"jobs": 2, "cpu_minutes": 2.0}, "tune_study": {"jobs": 1, "cpu_minutes": 1.0}}
    assert r["runs"] == 1 and r["returncode"] == 0 and 0 <= r["wall_minutes"] < 1
    text = profile_block(snap, "quick")
    assert "finished in **" in text and "2 `train_run` jobs, 2.0 CPU min" in text and "1 Optuna studies" in text

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

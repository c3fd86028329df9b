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

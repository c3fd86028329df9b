"""The reproduction report: every table and figure of a profile, by relative path, the index of
what runs here, LaTeX always, a PDF only with a TeX engine (never installed)."""
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest

from cel import report_doc
from cel.report_doc import INDEX, build_report, report_tex, table_html


def _profile(tmp_path):
    res = tmp_path / "results" / "quick"
    (res / "tables").mkdir(parents=True)
    (res / "figures").mkdir()
    (res / "tables" / "table7.tex").write_text("\\begin{table}ours 0.8794 [0.8689; +0.0105]\\end{table}\n")
    (res / "tables" / "table7.csv").write_text("method,dataset,compression,mean,paper,delta\ncel,ml-100k,5,0.87941,0.8689,0.01051\n")
    for stem in ("fig3_ml-100k", "fig5_ml-100k", "prop1"):
        (res / "figures" / f"{stem}.pdf").write_bytes(b"%PDF-1.4 fake")
    pd.DataFrame({"reading": ["per_genre", "per_cluster"], "cel": [1.8773, 2.3502], "random_mean": [1.9316, 2.4006],
                  "random_sd": [0.0158, 0.005], "p_random_lower": [0.005, 0.0], "n_random": [200, 200]}
                 ).to_csv(res / "figures" / "fig5_ml-100k_entropy.csv", index=False)
    pd.DataFrame({"metric": ["val_mse", "val_mse"], "k": [3, 6], "mean": [0.1, 0.02], "se": [0, 0], "n": [3, 3],
                  "planted": [6, 6], "argmin": [6, 6]}).to_csv(res / "figures" / "prop1.csv", index=False)
    return res


def test_report_inputs_every_table_and_figure_by_a_path_that_resolves(tmp_path, monkeypatch):
    monkeypatch.setattr(report_doc.shutil, "which", lambda name: None)
    res = _profile(tmp_path)
    out = tmp_path / "results" / "report" / "report.tex"
    r = build_report({"quick": res}, out)
    assert r["pdf"] is None and "no TeX engine" in r["note"]
    tex = out.read_text()
    inputs = re.findall(r"\\input\{([^}]*)\}", tex)
    graphics = re.findall(r"\\includegraphics\[[^]]*\]\{([^}]*)\}", tex)
    assert len(inputs) == 1 and len(graphics) == 3
    for p in inputs + graphics:
        assert (out.parent / p).resolve().exists(), p                  # relative to the report's folder
    assert "genre entropy per\\_genre: CEL 1.8773, random 1.9316" in tex
    assert "val\\_mse: minimum at $M_q$ = 6 (planted 6)" in tex
    assert tex.count("\\begin{figure}") == tex.count("\\end{figure}") == 3
    assert tex.strip().endswith("\\end{document}")


def test_the_index_says_what_runs_here_and_what_needs_a_connected_machine(tmp_path):
    res = _profile(tmp_path)
    tex = report_tex({"quick": res}, tmp_path)
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if line.startswith(("Table", "Figure", "Prop", "Section"))}
    assert {e.item for e in INDEX} <= set(rows)
    assert "ML-1m and ML-10m columns" in rows["Table 7"] and rows["Table 7"].rstrip(" \\").endswith("$\\checkmark$")
    assert "all rows (Amazon 2014 archives)" in rows["Table 3"] and rows["Table 3"].rstrip(" \\").endswith("--")
    assert "not public" in rows["Table 4"]
    assert rows["Figure 3"].rstrip(" \\").endswith("& ml-100k") and rows["Figure 6"].rstrip(" \\").endswith("--")
    assert rows["Proposition 1"].rstrip(" \\").endswith("$\\checkmark$")


def test_a_tex_engine_compiles_in_the_report_folder(tmp_path, monkeypatch):
    res = _profile(tmp_path)
    fake = tmp_path / "bin" / "pdflatex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nfor a; do f=$a; done\npwd > where.txt\ncp \"$f\" \"${f%.tex}.pdf\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(report_doc.shutil, "which", lambda name: str(fake) if name == "pdflatex" else None)
    out = tmp_path / "report" / "report.tex"
    r = build_report({"quick": res}, out)
    assert r["engine"] == "pdflatex" and Path(r["pdf"]).exists()
    assert Path((out.parent / "where.txt").read_text().strip()).resolve() == out.parent.resolve()


def test_table_html_carries_ours_and_the_papers_number(tmp_path):
    res = _profile(tmp_path)
    html = table_html(res / "tables" / "table7.csv")
    assert "<table" in html and "0.8794" in html and "0.8689" in html and "0.0105" in html


def test_cel_report_cli_writes_the_source(tmp_path, monkeypatch):
    from cel.cli import main

    monkeypatch.setattr(report_doc.shutil, "which", lambda name: None)
    res = _profile(tmp_path)
    out = tmp_path / "r" / "report.tex"
    assert main(["report", "config/smoke.yaml", "--results", f"quick={res}", "--out", str(out)]) == 0
    assert "\\input{" in out.read_text()
    html = tmp_path / "t.html"
    assert main(["report", "config/smoke.yaml", "--table-html", str(res / "tables" / "table7.csv"),
                 "--out", str(html)]) == 0
    assert "0.8689" in html.read_text()

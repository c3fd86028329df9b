"""The README's generated blocks: numbers come from results, never from a keyboard.

``cel readme CONFIG`` snapshots what a finished ``make run`` produced into ``docs/results/``
(Table 7's cells and claims, the refit-vs-held-out comparison, the job times of the benchmark
files, the commits that trained the runs) and rewrites the README's blocks between
``<!-- generated:NAME -->`` and ``<!-- end generated:NAME -->`` from that snapshot and from
``resources/deviations.yaml``. ``tests/test_readme.py`` renders the blocks again from the committed
snapshot and fails when the README differs, so a hand-edited number cannot survive a test run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from cel.paper import deviations

SNAPSHOT_FILES = ("table7.csv", "table7_claims.csv", "holdout.csv", "runtime.json")
LABELS = {"full": "full embedding", "etree": "eTree", "jnkm": "JNKM", "modulo": "Modulo", "bh": "BH (mean pooling)",
          "ae": "AE", "hashgnn": "HashGNN", "prehash_k4": "PreHash K=4", "prehash_kmq": "PreHash K=M_q",
          "cel": "CEL", "cel_lite": "CEL-Lite", "cerp": "CERP", "qr": "QR (reference)"}
COMPRESSIONS = ("100", "5", "1", "0.5")
BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- end generated:(?P=name) -->)", re.S)


# ------------------------------------------------------------------------------ snapshot
def snapshot(results_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the figures the README quotes from a results folder into ``out_dir``."""
    tables = results_dir / "tables"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("table7.csv", "table7_claims.csv"):
        frame = pd.read_csv(tables / name, dtype={"compression": str})
        written.append(out_dir / name)
        frame.to_csv(written[-1], index=False)
    summary = pd.read_csv(results_dir / "summary.csv", dtype={"compression": str})
    keep = summary[summary["metric"].isin(["test_mse", "holdout_test_mse"]) & (summary["task"] == "regression")]
    per_fold = keep.groupby(["dataset", "method", "compression", "fold", "metric"])["value"].mean().unstack("metric")
    holdout = per_fold.dropna().groupby(["dataset", "method", "compression"]).mean().reset_index()
    written.append(out_dir / "holdout.csv")
    holdout.to_csv(written[-1], index=False)
    bench = [pd.read_csv(f, sep="\t").iloc[0] for f in sorted((results_dir / "benchmarks" / "train_run").rglob("*.tsv"))]
    runtime = {"train_jobs": len(bench), "job_minutes": round(sum(float(b["s"]) for b in bench) / 60, 1),
               "cpu_minutes": round(sum(float(b["cpu_time"]) for b in bench) / 60, 1), "commits": _commits(results_dir)}
    written.append(out_dir / "runtime.json")
    written[-1].write_text(json.dumps(runtime, indent=1, sort_keys=True) + "\n")
    return written


def profile_snapshot(results_dir: Path, out_dir: Path, name: str) -> Path:
    """``<name>_runtime.json``: a whole profile's measured time (``wall.json``, written by
    ``scripts/timed.py`` around ``snakemake all``, e.g. ``make quick``) and its jobs' benchmark files."""
    wall_file = results_dir / "wall.json"
    if not wall_file.exists():
        raise FileNotFoundError(f"{wall_file}: no measured wall time; run the profile through scripts/timed.py "
                                f"(`make quick` does) from an empty {results_dir}")
    wall = json.loads(wall_file.read_text())
    jobs = {}
    for rule in ("train_run", "tune_study"):
        files = sorted((results_dir / "benchmarks" / rule).rglob("*.tsv"))
        rows = [pd.read_csv(f, sep="\t").iloc[0] for f in files]
        jobs[rule] = {"jobs": len(rows), "cpu_minutes": round(sum(float(r["cpu_time"]) for r in rows) / 60, 1)}
    runtime = {"wall_minutes": round(wall["wall_seconds"] / 60, 1), "cpu_minutes": round(wall["cpu_seconds"] / 60, 1),
               "cpus": wall["cpus"], "load_before": wall["load_before"][0], "commit": wall["commit"],
               "dirty": wall["dirty"], "returncode": wall["returncode"], "command": wall["command"],
               "runs": len(list((results_dir / "runs").rglob("metrics.json"))), "jobs": jobs}
    out = out_dir / f"{name}_runtime.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(runtime, indent=1, sort_keys=True) + "\n")
    return out


def profile_block(snap: Path, name: str) -> str:
    r = json.loads((snap / f"{name}_runtime.json").read_text())
    t, s = r["jobs"]["train_run"], r["jobs"]["tune_study"]
    status = "finished" if r["returncode"] == 0 else f"FAILED (exit code {r['returncode']})"
    return (f"`{r['command']}` from an empty results folder: {status} in **{r['wall_minutes']} minutes** of wall "
            f"time on a {r['cpus']}-core machine (load average {r['load_before']} just before the start), "
            f"{r['cpu_minutes']} CPU minutes over all its processes; {r['runs']} training runs "
            f"({t['jobs']} `train_run` jobs, {t['cpu_minutes']} CPU min) and {s['jobs']} Optuna studies "
            f"({s['cpu_minutes']} CPU min); code of commit {r['commit']}{' with uncommitted changes' if r['dirty'] else ''}. "
            f"Measured by `scripts/timed.py` (`make quick`), snapshot `docs/results/{name}_runtime.json`.\n")


def _commits(results_dir: Path) -> list[str]:
    found = set()
    for f in (results_dir / "runs").rglob("metrics.json"):
        found.add(json.loads(f.read_text())["tags"]["git_commit"][:7])
    return sorted(found)


# -------------------------------------------------------------------------------- blocks
def _cell(r: pd.Series, nominal: str) -> str:
    paper = "–" if pd.isna(r["paper"]) else f"{r['paper']:.4f}"
    text = f"{r['mean']:.4f} ± {r['std']:.4f} ({paper})"
    n, runs = int(r["n"]), int(r["runs"]) if "runs" in r and not pd.isna(r["runs"]) else int(r["n"])
    text += f", n={n}×{runs // n}" if runs > n else f", n={n}"
    stored = r.get("stored_percent")
    if stored is not None and not pd.isna(stored) and abs(stored - float(nominal)) > 0.02 * float(nominal):
        text += f", stores {stored:.3g}%"
    return text


def results_block(snap: Path, dataset: str = "ml-100k") -> str:
    cells = pd.read_csv(snap / "table7.csv", dtype={"compression": str})
    cells = cells[(cells["dataset"] == dataset) & (cells["metric"] == "test_mse")]
    claims = pd.read_csv(snap / "table7_claims.csv", dtype={"compression": str})
    claims = claims[claims["dataset"] == dataset]
    runtime = json.loads((snap / "runtime.json").read_text())
    lines = ["| method | " + " | ".join(f"{c}%" for c in COMPRESSIONS) + " |", "|---|" + "---|" * len(COMPRESSIONS)]
    for method, label in LABELS.items():
        row = cells[cells["method"] == method]
        if row.empty:
            continue
        by = {r["compression"]: r for _, r in row.iterrows()}
        lines.append(f"| {label} | " + " | ".join(_cell(by[c], c) if c in by else "" for c in COMPRESSIONS) + " |")
    cel = {c: by_c for c, by_c in cells[cells["method"] == "cel"].set_index("compression").iterrows()}
    targets = [f"{c}%: {cel[c]['mean']:.4f} vs {cel[c]['paper']:.4f} ({cel[c]['mean'] - cel[c]['paper']:+.4f})"
               for c in COMPRESSIONS if c in cel and not pd.isna(cel[c]["paper"])]
    tested = claims["p_value"].notna()
    lines += ["", f"CEL against the paper (ours vs paper, difference): {'; '.join(targets)}. The target is the "
                  "paper + 0.005.", "",
              f"The paper's orderings (`table7_claims.csv`): {int(claims['holds'].sum())} of {len(claims)} hold on "
              f"our means; {int(claims.loc[tested, 'significant'].sum())} of {int(tested.sum())} are significant "
              f"(one-sided paired t-tests over folds, seeds averaged within a fold, Holm over the table, 0.05)."]
    weak = claims[~claims["significant"].astype(bool)]
    for r in weak.itertuples():
        p = "n/a" if pd.isna(r.p_holm) else f"{r.p_holm:.2g}"
        lines.append(f"- not significant: {r.claim} at {r.compression}% ({r.ours_better:.4f} vs "
                     f"{r.ours_worse:.4f}, p_holm {p}{'' if r.holds else ', does not hold'})")
    hold = pd.read_csv(snap / "holdout.csv", dtype={"compression": str})
    hold = hold[(hold["dataset"] == dataset) & (hold["method"] == "cel")].set_index("compression")
    if len(hold):
        pairs = [f"{c}%: {hold.loc[c, 'test_mse']:.4f} vs {hold.loc[c, 'holdout_test_mse']:.4f}"
                 for c in COMPRESSIONS if c in hold.index]
        lines += ["", "Refit on the whole training fold vs the model trained without the validation slice "
                      f"(CEL, test MSE, mean over folds): {'; '.join(pairs)}."]
    lines += ["", f"Reproduce: `make run`; {runtime['train_jobs']} training jobs whose benchmark files add up to "
                  f"{runtime['cpu_minutes']} CPU minutes ({runtime['cpu_minutes'] / 2:.1f} minutes on 2 free cores; "
                  f"{runtime['job_minutes']} minutes of job wall time as measured here, with other work sharing "
                  f"the cores); code of commit(s) {', '.join(c[:7] for c in runtime['commits'])}."]
    return "\n".join(lines) + "\n"


def deviations_block() -> str:
    return "".join(f"- **{d['what']}.** Paper: {d['paper']}. Ours: {d['ours']}. Evidence: {d['evidence']}.\n"
                   for d in deviations().values())


PROFILE_BLOCKS = ("quick",)      # profiles whose measured time the README quotes (<name>_runtime.json)


def blocks(snap: Path) -> dict[str, str]:
    out = {"results": results_block(snap), "deviations": deviations_block()}
    for name in PROFILE_BLOCKS:
        if (snap / f"{name}_runtime.json").exists():
            out[f"time_{name}"] = profile_block(snap, name)
    return out


# ------------------------------------------------------------------------------- rewrite
def render_readme(text: str, new: dict[str, str]) -> str:
    """``text`` with every generated block replaced; a block named but missing is an error."""
    seen = set()

    def sub(m: re.Match) -> str:
        seen.add(m["name"])
        return m.group(1) + new[m["name"]] + m.group(4) if m["name"] in new else m.group(0)

    out = BLOCK.sub(sub, text)
    missing = set(new) - seen
    if missing:
        raise ValueError(f"README has no block(s) {sorted(missing)}: add '<!-- generated:NAME -->' markers")
    return out


def update(readme: Path, snap: Path) -> bool:
    """Rewrite the README's blocks from the snapshot; True if anything changed."""
    old = readme.read_text()
    new = render_readme(old, blocks(snap))
    if new != old:
        readme.write_text(new)
    return new != old

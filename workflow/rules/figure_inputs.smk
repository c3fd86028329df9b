# Which figures this profile's grid can feed, and the figure rules' input and param functions
# (figures.smk holds the rules). No rules here.
from cel.figs.fig6 import CRITERIA as _FIG6_CRITERIA
from cel.train.tasks import TASKS


def _grid(method, dataset, variant=None, compression=None, model="nmf", task="regression"):
    """The grid's runs of one cell pattern (None = any)."""
    return [r for r in RUNS if r.method == method and r.dataset == dataset and r.model == model and r.task == task
            and (variant is None or r.variant == variant)
            and (compression is None or float(r.compression) == float(compression))]


def _comps(method, dataset, variant=None, below_100=True):
    cs = {r.compression for r in _grid(method, dataset, variant)}
    return sorted((c for c in cs if not below_100 or float(c) < 100), key=float)


def _datasets():
    return [d for d in CFG.raw["datasets"] if not CFG.only_datasets or d in CFG.only_datasets]


def _fig3_variants(d):
    return [v for v in ("dense", "original", "sparse") if _comps("cel", d, v) and _grid("full", d, v, 100)]


def _fig4_comp(d):
    common = [c for c in _comps("cel", d, "original") if _grid("prehash_kmq", d, "original", c)]
    if not common or not _grid("full", d, "original", 100):
        return None
    return "1" if "1" in common else common[0]


def _fig5_run(d):
    cs = _comps("cel", d, "original")
    runs = [r for r in _grid("cel", d, "original", cs[0]) if r.seed == 0] if cs else []
    return min(runs, key=lambda r: r.fold) if runs else None


def _fig6_ok(d):
    return all(_comps(m, d, "original") for m in _FIG6_CRITERIA)


def buildable_figures():
    """The figure files this profile's grid can feed (what the `figures` target builds)."""
    out = []
    for d in _datasets():
        ok = {"fig3": bool(_fig3_variants(d)), "fig4": _fig4_comp(d) is not None, "fig5": _fig5_run(d) is not None,
              "fig6": _fig6_ok(d), "fig7b": bool(_comps("cel", d, "original"))}
        out += [f"{RES}/figures/{f}_{d}.pdf" for f, good in ok.items() if good]
    return out + [f"{RES}/figures/prop1.pdf"]


def _metrics(runs):
    return [str(paths.run_dir(RES, r) / "metrics.json") for r in runs]


def _fig4_inputs(wildcards):
    d, c = wildcards.dataset, _fig4_comp(wildcards.dataset)
    if c is None:
        raise ValueError(f"fig4: the grid has no cel and prehash_kmq at a common compression with full at 100 on {d}")
    runs = (_grid("cel", d, "original", c) + _grid("prehash_kmq", d, "original", c) + _grid("full", d, "original", 100)
            + _grid("cel", d, "original", 100))
    return _metrics(runs)


def _fig4_params(wildcards):
    c = _fig4_comp(wildcards.dataset)
    pers = "cel@100" if _grid("cel", wildcards.dataset, "original", 100) else "none"
    return f"--compression {c} --personalized {pers}"


def _fig3_params(wildcards):
    d = wildcards.dataset
    vs = _fig3_variants(d)
    if not vs:
        raise ValueError(f"fig3: the grid has no cel below 100% with full at 100 on any variant of {d}")
    pers = "cel_personalized" if any(_grid("cel_personalized", d, v) for v in vs) else "none"
    return f"--variants {','.join(vs)} --personalized {pers}"


def _fig5_inputs(wildcards):
    r = _fig5_run(wildcards.dataset)
    if r is None:
        raise ValueError(f"fig5: the grid has no cel run below 100% on {wildcards.dataset}/original")
    vdir = f"{RES}/data/{wildcards.dataset}/original"
    return {"metrics": _metrics([r])[0], "interactions": f"{vdir}/interactions.parquet",
            "folds": f"{vdir}/folds.parquet"}


def _fig6_inputs(wildcards):
    if not _fig6_ok(wildcards.dataset):
        raise ValueError(f"fig6: the grid lacks some of {', '.join(_FIG6_CRITERIA)} on {wildcards.dataset}/original")
    return f"{RES}/summary.csv"


def _fig7b_comps(wildcards):
    cs = _comps("cel", wildcards.dataset, "original")
    if not cs:
        raise ValueError(f"fig7b: the grid has no cel run below 100% on {wildcards.dataset}/original")
    return " ".join(f"--compression {c}" for c in cs)


# The progressive (predict-then-train) score of single-pass streams (issue #11): a task streamed
# once with no validation slice and no refit, where that score is the only one. One figure per
# such task and dataset, the runs of fold 0 and seed 0 (e.g. config/lite.yaml's stream_once:
# CEL-Lite 5% beside the full embedding).
def _single_pass_tasks():
    out = []
    for name, spec in CFG.raw["tasks"].items():
        feed, train = spec.get("feed") or {}, CFG.task_train(name)
        if feed.get("kind") in ("stream", "replay") and feed.get("passes") == 1 \
                and not train.val_fraction and not train.refit:
            out.append(name)
    return out


def _progressive_runs(task, dataset):
    return [r for r in RUNS if r.task == task and r.dataset == dataset and r.fold == 0 and r.seed == 0]


def progressive_figures():
    return [f"{RES}/figures/progressive_{t}_{d}.png" for t in _single_pass_tasks() for d in _datasets()
            if _progressive_runs(t, d)]


def _progressive_inputs(wildcards):
    runs = _progressive_runs(wildcards.task, wildcards.dataset)
    if wildcards.task not in _single_pass_tasks() or not runs:
        raise ValueError(f"progressive: {wildcards.task} is not a single-pass stream task with runs on "
                         f"{wildcards.dataset} (fold 0, seed 0)")
    return _metrics(runs)


def _progressive_params(wildcards):
    runs = _progressive_runs(wildcards.task, wildcards.dataset)
    label = lambda r: (f"{r.method} {r.compression}%" if r.method != "full" else "full embedding") + \
        (f" {r.model}" if len({x.model for x in runs}) > 1 else "") + \
        (f" {r.variant}" if len({x.variant for x in runs}) > 1 else "")
    metric = TASKS[CFG.task(runs[0].task)["kind"]].primary
    return " ".join(f"--run '{label(r)}={paths.run_dir(RES, r)}'" for r in runs) + f" --metric {metric}"

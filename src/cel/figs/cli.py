"""``cel plot CONFIG... --name FIG --out PATH [...]``: one paper figure from a profile's results.

Defaults come from the profile: the summary is ``<results_dir>/summary.csv``, the run folders
``<results_dir>/runs/``, the data ``<results_dir>/data/``; the dataset is the profile's first
(after ``only_datasets``). ``--out`` names the figure (``.pdf``/``.png``/``.csv`` are written beside).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cel.errors import ConfigError
from cel.figs import FIGURES


def add_args(sp) -> None:
    sp.add_argument("--name", required=True, choices=FIGURES)
    sp.add_argument("--out", required=True, help="figure path (stem; .pdf, .png and .csv are written)")
    sp.add_argument("--summary", help="summary.csv (fig3, fig6; default RESULTS/summary.csv)")
    sp.add_argument("--dataset", help="dataset (default: the profile's first)")
    sp.add_argument("--variant", default=None, help="variant (fig4/5/6/7b: default original)")
    sp.add_argument("--variants", default="dense,original,sparse", help="fig3: comma-separated variants")
    sp.add_argument("--model", default="nmf")
    sp.add_argument("--task", default="regression")
    sp.add_argument("--compression", action="append",
                    help="fig4/fig5: the compression (one); fig3/fig6/fig7b: repeat (default: what the runs have)")
    sp.add_argument("--personalized", default=None,
                    help="fig3: method of the personalised curve (default cel_personalized); "
                         "fig4: METHOD@COMPRESSION (default cel@100); 'none' leaves it out")
    sp.add_argument("--run", help="fig5: run folder (default RESULTS/runs/TASK/D/V/MODEL/cel/crC/f0/s0)")
    sp.add_argument("--fold", type=int, default=0, help="fig5/fig7b: fold")
    sp.add_argument("--steps", type=int, default=2000, help="fig7b: training steps")
    sp.add_argument("--work", help="prop1: folder of its runs (default RESULTS/figures/prop1_runs)")
    sp.add_argument("--folds", default="0,1,2", help="prop1: comma-separated folds")


def _dataset(cfg, args) -> str:
    names = list(cfg.only_datasets or cfg.raw["datasets"])
    name = args.dataset or (names[0] if names else None)
    if name not in cfg.raw["datasets"]:
        raise ConfigError(f"--dataset: unknown dataset '{name}' (known: {', '.join(cfg.raw['datasets'])})")
    return name


def _personalized(args, default):
    p = args.personalized
    if p is None:
        return default
    return None if p.lower() == "none" else p


def run(cfg, args: argparse.Namespace) -> int:
    res = Path(cfg.results_dir)
    summary = args.summary or res / "summary.csv"
    variant = args.variant or "original"
    comps = args.compression
    if args.name == "fig3":
        from cel.figs.fig3 import fig3

        pts = fig3(summary, args.out, _dataset(cfg, args), variants=tuple(args.variants.split(",")), model=args.model,
                   task=args.task, compressions=comps, personalized=_personalized(args, "cel_personalized"))
    elif args.name == "fig4":
        from cel.figs.fig4 import fig4

        p = _personalized(args, "cel@100")
        pers = tuple(p.split("@", 1)) if p else None
        if pers is not None and len(pers) != 2:
            raise ConfigError(f"--personalized: expected METHOD@COMPRESSION, got {args.personalized!r}")
        pts = fig4(res, args.out, _dataset(cfg, args), (comps or ["1"])[0], variant=variant, model=args.model,
                   task=args.task, personalized=pers)
    elif args.name == "fig5":
        from cel.figs.fig5 import fig5

        ds = _dataset(cfg, args)
        c = (comps or ["0.5"])[0]
        run_dir = args.run or res / "runs" / args.task / ds / variant / args.model / "cel" / f"cr{c}" / f"f{args.fold}" / "s0"
        pts, ent = fig5(run_dir, res / "data" / ds / variant, args.out)
        for _, r in ent.iterrows():
            print(f"genre entropy {r['reading']}: CEL {r['cel']:.4f}, random {r['random_mean']:.4f} "
                  f"± {r['random_sd']:.4f} (share of random at or below CEL: {r['p_random_lower']:.3f})")
    elif args.name == "fig6":
        from cel.figs.fig6 import fig6

        pts, ranks = fig6(summary, args.out, _dataset(cfg, args), compressions=comps, variant=variant,
                          model=args.model, task=args.task)
        print(ranks.to_string(index=False))
    elif args.name == "fig7b":
        from cel.figs.fig7b import fig7b_experiment, fig7b_plot
        from cel.runkey import RunKey

        keys = [RunKey(args.task, _dataset(cfg, args), variant, args.model, "cel", c, args.fold, 0)
                for c in (comps or ["5", "1", "0.5"])]
        pts = fig7b_plot(fig7b_experiment(cfg, [RunKey.from_mapping(k.as_dict()) for k in keys], steps=args.steps),
                         args.out)
        last = pts.groupby("compression").tail(1)
        print(last[["compression", "step", "clusters", "share_outside"]].to_string(index=False))
    elif args.name == "prop1":
        from cel.figs.prop1 import prop1_experiment, prop1_plot

        work = Path(args.work) if args.work else res / "figures" / "prop1_runs"
        runs = prop1_experiment(work, folds=tuple(int(f) for f in args.folds.split(",")))
        pts = prop1_plot(runs, args.out)
        print(pts.to_string(index=False))
    print(f"wrote {args.out} ({len(pts)} points)")
    return 0

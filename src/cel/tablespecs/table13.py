"""Table 13: optimiser ablation. GD or Adam for the item centroids, with or without gradient
averaging (Eq. 7), at 1 % and 2 %, 1000 steps (the step chosen on validation within them)."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

SETTINGS = {"gd+True": "gd_gradient_averaging", "gd+False": "gd", "adam+True": "adam_gradient_averaging",
            "adam+False": "adam"}

SPEC = TableSpec(
    name="table13",
    caption="Test MSE after at most 1000 steps for optimiser settings (Table 13), NMF on ML-100k; "
            "below: [paper; ours $-$ paper].",
    rows=Axis("compression", values=("1", "2"), title="Compression ratio", fmt="{}\\%"),
    cols=(Axis("train.optimizer", values=("gd", "adam"), labels={"gd": "GD", "adam": "Adam"}, title="Optimizer"),
          Axis("param.grad_avg", values=("True", "False"),
               labels={"True": "+ grad.\\ averaging", "False": "plain"}, title="")),
    metric="test_mse",
    filters={"task": ("t13_gd", "t13_adam"), "dataset": "ml-100k", "model": "nmf", "variant": "original",
             "method": ("cel", "cel_no_grad_avg"), "compression": ("1", "2")},
    paper=PaperRef("table13", ("{train.optimizer+param.grad_avg}", "{compression}"),
                   keys={"train.optimizer+param.grad_avg": SETTINGS}),
    claims=(Claim("True", "False", axis="param.grad_avg"),),
)

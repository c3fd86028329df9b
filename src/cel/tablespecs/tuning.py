"""Tuned against hand-set CEL (issue 13): the Optuna-tuned CEL (t1, t2, δ, the split criterion,
lr; at 100 % the budget, untie step and λ_p) against Table 7's CEL with the paper's settings, on
validation and on test. The paper's value is Table 7's CEL."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

SPEC = TableSpec(
    name="tuning",
    caption="Validation and test MSE of CEL with the paper's settings and tuned by Optuna on each fold's "
            "validation slice, NMF on ML-100k; below the test cells: [paper (Table 7 CEL); ours $-$ paper].",
    rows=Axis("method", values=("cel", "cel_tuned", "cel_p_tuned"),
              labels={"cel": "CEL (paper settings)", "cel_tuned": "CEL (tuned)", "cel_p_tuned": "CEL (p, tuned)"}),
    cols=(Axis("metric", values=("val_mse", "test_mse")),
          Axis("compression", values=("100", "5", "1", "0.5"), reverse=True)),
    filters={"task": "regression", "dataset": "ml-100k", "model": "nmf", "variant": "original",
             "method": ("cel", "cel_tuned", "cel_p_tuned"), "compression": ("100", "5", "1", "0.5")},
    paper=PaperRef("table7", ("{dataset}", "cel", "{compression}"), when={"metric": "test_mse"}),
    claims=(Claim("cel_tuned", "cel", ("5", "1", "0.5")), Claim("cel_p_tuned", "cel", ("100",))),
)

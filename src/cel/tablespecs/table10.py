"""Table 10: the reassignment interval t1 (20, 40 = base CEL, 100) at 0.5 % and 1 %: training and
test MSE. The paper's table is ML-1m (values shown labelled)."""
from cel.tablespec import Axis, PaperRef, TableSpec

METHODS = ("cel_t1_20", "cel", "cel_t1_100")

SPEC = TableSpec(
    name="table10",
    caption="Training and test MSE of CEL for reassignment intervals $t_1$ (Table 10), NMF. Below each "
            "cell: the paper's value, for ML-1m.",
    rows=Axis("metric", values=("train_mse", "test_mse"), labels={"train_mse": "CEL (training MSE)",
                                                                   "test_mse": "CEL (test MSE)"}),
    cols=(Axis("compression", values=("0.5", "1"), title="Compression ratio"), Axis("param.t1", values=("20", "40", "100"),
                                                                                   title="$t_1$")),
    filters={"task": "regression", "dataset": "ml-100k", "model": "nmf", "variant": "original", "method": METHODS,
             "compression": ("0.5", "1")},
    paper=PaperRef("table10", ("compression_{compression}", "{metric}", "{param.t1}"),
                   keys={"metric": {"train_mse": "train", "test_mse": "test"}}, source="ML-1m"),
)

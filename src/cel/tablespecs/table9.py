"""Table 9: the GPCA split threshold δ (0, the median of the first principal component's scores,
balanced data), CEL split to 2 %."""
from cel.tablespec import Axis, PaperRef, TableSpec

METHODS = ("cel", "delta_median", "delta_balanced")

SPEC = TableSpec(
    name="table9",
    caption="Test MSE of CEL at 2\\% for different GPCA split thresholds $\\delta$ (Table 9), NMF; "
            "below: [paper; ours $-$ paper].",
    rows=Axis("method", values=METHODS, labels={"cel": "$\\delta = 0$", "delta_median": "$\\delta$ = median score",
                                                "delta_balanced": "$\\delta$ balancing the data"}),
    cols=Axis("dataset", values=("ml-100k",), title="MovieLens"),
    metric="test_mse",
    filters={"task": "regression", "model": "nmf", "variant": "original", "method": METHODS, "compression": "2"},
    paper=PaperRef("table9", ("{method}", "{dataset}"), keys={"method": {"cel": "delta_zero"}}),
)

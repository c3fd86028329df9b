"""Table 11: retraining from scratch with CEL's learned clustering frozen (no split, no move)."""
from cel.tablespec import Axis, PaperRef, TableSpec

SPEC = TableSpec(
    name="table11",
    caption="Test MSE of CEL and of a retraining with CEL's learned item clustering fixed (Table 11), NMF; "
            "below: [paper; ours $-$ paper].",
    rows=Axis("method", values=("cel", "cel_retrain"), labels={"cel_retrain": "CEL (retrain)"}),
    cols=(Axis("dataset", values=("ml-100k",)), Axis("compression", values=("1", "0.5"), reverse=True)),
    metric="test_mse",
    filters={"task": "regression", "model": "nmf", "variant": "original", "method": ("cel", "cel_retrain"),
             "compression": ("1", "0.5")},
    paper=PaperRef("table11", ("{dataset}", "{method}", "{compression}")),
)

"""Table 8: split vs no split (M_0 = the budget, reassignment only), NMF (and DIN where its runs
exist). The paper's table is ML-1m: its values are shown labelled, not subtracted."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

SPEC = TableSpec(
    name="table8",
    caption="Test MSE of CEL with and without the split (Table 8), item embeddings compressed. "
            "Below each cell: the paper's value, for ML-1m.",
    rows=Axis("method", values=("cel_no_split", "cel"), labels={"cel_no_split": "CEL (no split)", "cel": "CEL"}),
    cols=(Axis("model", values=("nmf", "din")), Axis("compression", values=("1", "0.5"), reverse=True)),
    metric="test_mse",
    filters={"task": "regression", "dataset": "ml-100k", "variant": "original", "method": ("cel_no_split", "cel"),
             "compression": ("1", "0.5")},
    paper=PaperRef("table8", ("{model}", "{method}", "{compression}"), keys={"model": {"nmf": "NMF", "din": "DIN"}},
                   source="ML-1m"),
    claims=(Claim("cel", "cel_no_split"),),
)

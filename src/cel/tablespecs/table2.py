"""Table 2, DIN rows: test MSE of rating prediction with DIN on ML-100k (the paper's Table 2 is
ML-1m: its values are shown for reference only, the data sets differ), item embeddings
compressed, users full, 5-fold CV. Claims: CEL < PreHash K=M_q < Modulo at every compression,
as the paper's DIN column orders them (one-sided paired t-tests over folds, Holm)."""
from cel.tablespec import Axis, Claim, TableSpec

TABLE2_DIN_METHODS = ("full", "modulo", "prehash_kmq", "cel")
_COMPRESSED = ("5", "1", "0.5")

SPEC = TableSpec(
    name="table2",
    caption="Test MSE of rating prediction with DIN (Table 2's DIN rows) on ML-100k, item "
            "embeddings compressed, users full; mean $\\pm$ std over folds (n = folds, seeds "
            "averaged within a fold). The paper reports ML-1m (not reachable here), so no paper "
            "value is shown beside ours.",
    rows=Axis("method", values=TABLE2_DIN_METHODS),
    cols=(Axis("dataset", values=("ml-100k",)),
          Axis("model", values=("din",), title="Feature Interaction Model"),
          Axis("compression", values=("100", "5", "1", "0.5"))),
    metric="test_mse",
    filters={"task": "regression", "variant": "original"},
    size_metric="item_compression_real",
    claims=(Claim("cel", "prehash_kmq", _COMPRESSED), Claim("prehash_kmq", "modulo", _COMPRESSED),
            Claim("cel", "modulo", _COMPRESSED)),
)

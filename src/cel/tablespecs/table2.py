"""Table 2, DIN rows: test MSE of rating prediction with DIN on ML-100k (the paper's Table 2 is
ML-1m: its values are shown for reference only, the data sets differ), item embeddings
compressed, users full, 5-fold CV. Claims: CEL < PreHash K=M_q < Modulo at every compression,
as the paper's DIN column orders them (one-sided paired t-tests over folds, Holm).

Before the measured columns, the paper's three properties of each method (Section 4.1.1), read
from ``paper_results.yaml`` (``table2.properties``), not measured here: LTC (Low Time
Consumption: O(DR) time for training and test; scaling linearly with M_q is not LTC), LMC (Low
Memory Consumption: significantly less memory than full embedding in training and test), SIT
(Supports Incremental Training)."""
from cel.tablespec import Axis, Claim, PaperRef, RowFlags, TableSpec

TABLE2_DIN_METHODS = ("full", "modulo", "prehash_kmq", "cel")
_COMPRESSED = ("5", "1", "0.5")
#: the paper's check-mark columns, in its order
TABLE2_FLAGS = ("ltc", "lmc", "sit")

SPEC = TableSpec(
    name="table2",
    caption="Test MSE of rating prediction with DIN (Table 2's DIN rows) on ML-100k, item "
            "embeddings compressed, users full; mean $\\pm$ std over folds (n = folds, seeds "
            "averaged within a fold). The paper reports ML-1m (not reachable here), so no paper "
            "value is shown beside ours. LTC (low time consumption: $O(DR)$ for training and test), "
            "LMC (low memory consumption in training and test) and SIT (supports incremental "
            "training) are the paper's properties of each method, not measured here "
            "(-- where the paper lists none).",
    rows=Axis("method", values=TABLE2_DIN_METHODS),
    cols=(Axis("dataset", values=("ml-100k",)),
          Axis("model", values=("din",), title="Feature Interaction Model"),
          Axis("compression", values=("100", "5", "1", "0.5"))),
    metric="test_mse",
    filters={"task": "regression", "variant": "original"},
    size_metric="item_compression_real",
    claims=(Claim("cel", "prehash_kmq", _COMPRESSED), Claim("prehash_kmq", "modulo", _COMPRESSED),
            Claim("cel", "modulo", _COMPRESSED)),
    row_flags=RowFlags(TABLE2_FLAGS, PaperRef("table2", ("properties", "{method}"))),
)

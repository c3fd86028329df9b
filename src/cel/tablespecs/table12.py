"""Table 12: sparsity. JNKM (full) against CEL at 2 % on the original data and with 50 % / 25 % of
each training fold kept."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

SPEC = TableSpec(
    name="table12",
    caption="Test MSE on training folds of decreasing density (Table 12), NMF: ``default'' is the whole "
            "fold, 50\\%/25\\% keep that share of its interactions; below: [paper; ours $-$ paper].",
    rows=Axis("method", values=("jnkm", "cel"), labels={"cel": "CEL (2\\%)"}),
    cols=(Axis("dataset", values=("ml-100k",)),
          Axis("variant", values=("original", "density50", "density25"),
               labels={"original": "default", "density50": "50\\%", "density25": "25\\%"})),
    metric="test_mse",
    filters={"task": "regression", "model": "nmf", "method+compression": ("jnkm+100", "cel+2"),
             "variant": ("original", "density50", "density25")},
    paper=PaperRef("table12", ("{dataset}", "{method}", "{variant}"),
                   keys={"method": {"cel": "cel_cr2"},
                         "variant": {"original": "default", "density50": "50", "density25": "25"}}),
    claims=(Claim("cel", "jnkm", ("density50", "density25")),),
)

"""Table 5: rule-based clusterings (by genre, by average rating), alone and as CEL's initialisation.

The paper's table is ML-1m with M_q = 18, 40, 200 clusters; the ML-100k analogue keeps the cluster
counts: 18, 40, 200 of 1682 items are the compressions 1.07, 2.38 and 11.89 %. The paper's values
are shown labelled "ML-1m", never subtracted from ours (READINGS: no comparison across datasets).
"""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

CLUSTERS = {"1.07": "18", "2.38": "40", "11.89": "200"}
METHODS = ("genre_only", "avg_rating_only", "genre_then_cel", "avg_rating_then_cel", "cel")

SPEC = TableSpec(
    name="table5",
    caption="Test MSE of NMF with rule-based clusterings of the items, used alone (``--'') or as the "
            "initialisation of CEL (Table 5). Columns: the number of item clusters $M_q$ (on ML-100k, "
            "1.07/2.38/11.89\\% of 1682 items). Below each cell: the paper's value, for ML-1m.",
    rows=Axis("method", values=METHODS, title="Initialisation / continue running",
              labels={"genre_only": "By genre / --", "avg_rating_only": "By avg.\\ rating / --",
                      "genre_then_cel": "By genre / CEL", "avg_rating_then_cel": "By avg.\\ rating / CEL",
                      "cel": "None / CEL"}),
    cols=(Axis("dataset", values=("ml-100k",)),
          Axis("compression", values=tuple(CLUSTERS), labels=CLUSTERS, title="Number of clusters ($M_q$)")),
    metric="test_mse",
    filters={"task": "regression", "model": "nmf", "variant": "original", "method": METHODS,
             "compression": tuple(CLUSTERS)},
    paper=PaperRef("table5", ("{method}", "{compression}"), keys={"compression": CLUSTERS}, source="ML-1m"),
    claims=(Claim("cel", "genre_only", ("1.07",)), Claim("cel", "avg_rating_only"),
            Claim("genre_then_cel", "genre_only", ("1.07",)), Claim("avg_rating_then_cel", "avg_rating_only")),
)

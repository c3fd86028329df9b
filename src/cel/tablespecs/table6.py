"""Table 6: split methods (random, bisecting 2-means on user-inspired or gradient representations,
random projection of gradients, GPCA = base CEL), NMF at 1 % (the paper's GPCA row is Table 7's
CEL at 1 %)."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

METHODS = ("random_split", "bisecting_2means_user", "bisecting_2means_gradient", "gradient_random_projection", "cel")

SPEC = TableSpec(
    name="table6",
    caption="Test MSE of CEL with different split methods (Table 6), NMF, item embeddings at 1\\%; "
            "below: [paper; ours $-$ paper].",
    rows=Axis("method", values=METHODS, labels={
        "random_split": "Random split", "bisecting_2means_user": "User-inspired bisecting 2-means",
        "bisecting_2means_gradient": "Gradient bisecting 2-means",
        "gradient_random_projection": "Gradient random projection", "cel": "GPCA (CEL)"}),
    cols=Axis("dataset", values=("ml-100k",), title="MovieLens"),
    metric="test_mse",
    filters={"task": "regression", "model": "nmf", "variant": "original", "method": METHODS, "compression": "1"},
    paper=PaperRef("table6", ("{method}", "{dataset}"), keys={"method": {"cel": "gpca"}}),
    claims=tuple(Claim("cel", m) for m in METHODS[:-1]) + (Claim("bisecting_2means_gradient", "bisecting_2means_user"),),
)

"""Table 3: test AUC of online conversion prediction (rating >= 4), DeepFM and DIN, users AND
items compressed (Section 4.1.2, A.1). ML-100k is the real-data check here; Video Games and
Electronics are the paper's columns (run on a connected machine, `config/conversion.yaml`).

Conversion runs are one chronological split with 5 seeds (A.1): seeds are the last aggregate
axis, so a cell is mean ± std over seeds (n = seeds) and claims pair runs by seed. The paper's
orderings (CEL-Lite ≥ PreHash K=M_q ≥ Modulo at every compression; CEL-Lite personalised ≥ full
at 100%) are non-inferiority tests within 0.001 AUC (READINGS, "Protocol and statistics")."""
from cel.tablespec import Axis, Claim, PaperRef, TableSpec

TABLE3_METHODS = ("full", "modulo", "hashgnn", "prehash_kmq", "cel_lite")
_COMPRESSED = ("10", "5", "2")
AUC_MARGIN = 0.001

SPEC = TableSpec(
    name="table3",
    caption="Test AUC (\\%) of online conversion prediction (rating $\\geq$ 4), users and items "
            "compressed (Table 3): chronological 80/20 split, validation = the last 10\\% of the "
            "training part by time, AUC over test interactions whose user and item occur in training. "
            "Ours: mean $\\pm$ std over seeds (n = seeds); below: [paper; ours $-$ paper]. "
            "CEL-Lite at 100\\% is personalised.",
    rows=Axis("method", values=TABLE3_METHODS),
    cols=(Axis("dataset", values=("ml-100k", "video_games", "electronics")),
          Axis("model", values=("deepfm", "din"), title="Feature Interaction"),
          Axis("compression", values=("100", "10", "5", "2"))),
    metric="test_auc",
    filters={"task": "conversion", "variant": "online"},
    aggregate=("fold", "seed"),
    paper=PaperRef("table3", ("{dataset}", "{model}", "{method}", "{compression}"),
                   keys={"model": {"din": "DIN", "deepfm": "DeepFM"}}),
    scale={"test_auc": 100.0},
    digits=2,
    claims=(
        Claim("cel_lite", "prehash_kmq", _COMPRESSED, margin=AUC_MARGIN),
        Claim("prehash_kmq", "modulo", _COMPRESSED, margin=AUC_MARGIN),
        Claim("cel_lite", "full", ("100",), margin=AUC_MARGIN),
    ),
)

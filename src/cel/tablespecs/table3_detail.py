"""Table 3's runs with every conversion metric side by side: test AUC, test logloss and the
progressive (predict-then-train) AUC over the training stream (READINGS #12: reported beside the
test AUC, never instead of it). Same runs, cells and n as ``table3``; its claims live there."""
from cel.tablespec import Axis, PaperRef, TableSpec
from cel.tablespecs.table3 import TABLE3_METHODS

SPEC = TableSpec(
    name="table3_detail",
    caption="Online conversion (Table 3's runs): test AUC (\\%), test logloss, and progressive "
            "(predict-then-train) AUC (\\%) over the training stream; mean $\\pm$ std over seeds (n = seeds).",
    rows=(Axis("dataset", values=("ml-100k", "video_games", "electronics")), Axis("method", values=TABLE3_METHODS)),
    cols=(Axis("metric", values=("test_auc", "test_logloss", "progressive_auc"),
               labels={"test_auc": "Test AUC (\\%)", "test_logloss": "Test logloss",
                       "progressive_auc": "Progressive AUC (\\%)"}),
          Axis("model", values=("deepfm", "din"), title="Feature Interaction"),
          Axis("compression", values=("100", "10", "5", "2"))),
    filters={"task": "conversion", "variant": "online"},
    aggregate=("fold", "seed"),
    paper=PaperRef("table3", ("{dataset}", "{model}", "{method}", "{compression}"),
                   keys={"model": {"din": "DIN", "deepfm": "DeepFM"}}, when={"metric": "test_auc"}),
    scale={"test_auc": 100.0, "progressive_auc": 100.0},
    digits=3,
)

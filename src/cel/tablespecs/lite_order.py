"""CEL-Lite's stream order (an ablation of issue 11's protocol): the training fold streamed in
timestamp order (the protocol; MovieLens timestamps come in per-user rating sessions, so a batch of
2000 consecutive interactions holds few users) against one seeded shuffle of it, with the same
replay feed, lr and split threshold. The paper does not say in which order its CEL-Lite row saw
ML-100k, so no paper value is shown."""
from cel.tablespec import Axis, TableSpec

SPEC = TableSpec(
    name="lite_order",
    caption="Test MSE of CEL-Lite (NMF, items compressed) trained on the training fold streamed in "
            "timestamp order or in one seeded random order (same replay feed: b = 2000, n = 20, "
            "m = 10, t1 = 1; passes chosen on validation).",
    rows=Axis("task", values=("online", "online_shuffled"),
              labels={"online": "time order", "online_shuffled": "shuffled order"}),
    cols=(Axis("dataset", values=("ml-100k",)), Axis("compression", values=("5", "1", "0.5"))),
    metric="test_mse",
    filters={"model": "nmf", "variant": "original", "method": "cel_lite", "task": ("online", "online_shuffled")},
)

"""What the stream costs (issue 11): the same NMF on ML-100k trained under four regimes, with
the full embedding, offline CEL's schedule (t1 = 40, t2 = 10, exact Eq. 4 over the entities'
interactions the feed holds) and CEL-Lite (m = 10, t1 = 1, d = 100):

* ``regression``: full-batch GD at lr 1e-4 on the sum loss (Table 7's protocol);
* ``mb``: shuffled mini-batches of 2000, no replay, GD at lr 2 on the batch mean;
* ``online_shuffled``: the replay feed (b = 2000, n = 20) over one seeded shuffle of the fold;
* ``online``: the replay feed in timestamp order (CEL-Lite's protocol, Table 7's CEL-Lite row).

Every run chooses its number of steps on the validation slice and is refitted on the whole fold.
MovieLens timestamps come in per-user rating sessions, so a time-ordered batch of 2000 holds few
users. No paper value: the paper reports CEL-Lite without saying in which order it streamed."""
from cel.tablespec import Axis, TableSpec

TASKS = ("regression", "mb", "online_shuffled", "online")
METHODS = ("full", "cel", "cel_lite")

SPEC = TableSpec(
    name="lite_stream",
    caption="Test MSE on ML-100k (NMF, items compressed at 5\\%, full embedding at 100\\%) under four "
            "training regimes: full-batch GD (Table 7), shuffled mini-batches, and the replay stream "
            "(b = 2000, n = 20) in a shuffled or in timestamp order; the step count chosen on validation.",
    rows=Axis("task", values=TASKS, title="Training regime",
              labels={"regression": "full batch (Table 7)", "mb": "shuffled mini-batches",
                                            "online_shuffled": "replay stream, shuffled",
                                            "online": "replay stream, time order"}),
    cols=(Axis("dataset", values=("ml-100k",)),
          Axis("method", values=METHODS, labels={"full": "full", "cel": "CEL schedule", "cel_lite": "CEL-Lite"}),
          Axis("compression", values=("100", "5"))),
    metric="test_mse",
    filters={"model": "nmf", "variant": "original", "task": TASKS, "method": METHODS, "compression": ("5", "100")},
)

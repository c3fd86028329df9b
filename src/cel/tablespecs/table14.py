"""Table 14: the user side's optimiser and learning rate, item centroids GD + gradient averaging at
lr 1e-4, CEL at 2 %."""
from cel.tablespec import Axis, PaperRef, TableSpec

LRS = {"1e-05": "0.00001", "0.0001": "0.0001", "0.0005": "0.0005", "0.001": "0.001"}

SPEC = TableSpec(
    name="table14",
    caption="Test MSE of CEL at 2\\% for the user embeddings' optimiser and learning rate (Table 14), "
            "items GD + gradient averaging at lr $10^{-4}$, NMF on ML-100k; below: [paper; ours $-$ paper].",
    rows=Axis("method", values=("cel",), labels={"cel": "GD + gradient averaging"}, title="Item \\textbackslash{} user"),
    cols=(Axis("train.user_optimizer", values=("gd", "adam", "adagrad", "rmsprop"),
               labels={"gd": "GD", "adam": "Adam", "adagrad": "Adagrad", "rmsprop": "RMSprop"}, title="User optimizer"),
          Axis("train.user_lr", values=tuple(LRS), labels=LRS, title="learning rate")),
    metric="test_mse",
    filters={"dataset": "ml-100k", "model": "nmf", "variant": "original", "method": "cel", "compression": "2",
             "task": ("t14_gd_1e-5", "t14_gd_1e-4", "t14_gd_5e-4", "t14_adam_1e-4", "t14_adam_1e-3",
                      "t14_adagrad_1e-4", "t14_adagrad_1e-3", "t14_rmsprop_1e-4")},
    paper=PaperRef("table14", ("user_{train.user_optimizer}", "{train.user_lr}"), keys={"train.user_lr": LRS}),
)

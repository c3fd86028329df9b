"""Table 4 analogue: test AUC of online conversion prediction with the two published production
"business models" of the paper's platform, DUPN and SAML (issue #16), their embedding module
being the full table, Modulo, or CEL-Lite at two table sizes (users and items compressed).

The paper's Table 4 (private One-day Sales data) has the business model with full embedding and
Modulo at 1m / 100k / 10k rows, and CEL-Lite at 100k / 10k. Here the budgets are 10% and 1% of
each side's entities (config/business.yaml says why), on ML-100k (real data) and on ``synth-stream``,
the synthetic power-law stream (:mod:`cel.data.stream_source`), and on Amazon Video Games and
Electronics where they were run (a connected machine; a data set without runs has no column, as in
Table 3). One chronological split, 5 seeds: a cell is mean ± std over seeds, claims pair runs by
seed. Claims, Holm over all of them: "CEL-Lite > Modulo at equal size" (superiority) and
"CEL-Lite at 10% / 1% ≥ the full embedding at 100%" (non-inferiority within 0.001 AUC, READINGS;
``Claim.worse_at``). :func:`size_ratios` writes the size ratios full / method beside the table
(``table4_sizes.csv``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cel.tablespec import Axis, Claim, TableSpec

AUC_MARGIN = 0.001
BUDGETS = ("10", "1")
MODELS = ("dupn", "saml")
#: the dataset names of config/business.yaml: MovieLens-100k, the synthetic power-law stream and
#: Amazon (only where run: a column needs runs)
DATASETS = {"ml-100k": "MovieLens-100k", "synth-stream": "Power-law stream (synthetic)",
            "video_games": "Video Games", "electronics": "Electronics"}

def size_ratios(summary: pd.DataFrame, rank: int = 8) -> pd.DataFrame:
    """The embedding-table size of every compressed cell against the full embedding's, per
    (dataset, model, method, budget), users + items: ``size_ratio_full_over_method`` of the stored
    parameters (CEL-Lite: cluster rows x R plus one assignment index per entity) and
    ``table_ratio_full_over_method`` of the embedding table alone (rows x ``rank``, the paper's
    "embedding table size"; a method without clusters, Modulo, stores its table alone, so its two
    ratios agree). Written beside the table as
    ``table4_sizes.csv`` (``TableSpec.sizes``)."""
    df = summary[(summary["task"].astype(str) == "conversion") & (summary["variant"].astype(str) == "online")
                 & summary["model"].astype(str).isin(MODELS)]
    df = df.assign(compression=[f"{float(c):g}" for c in df["compression"]])
    size = df[df["metric"] == "embedding_params"]
    rows_of = df[df["metric"].isin(["final_clusters_user", "final_clusters_item"])]
    rows = []
    for (ds, model), g in size.groupby(["dataset", "model"]):
        full = g[g["method"] == "full"]["value"]
        if not len(full):
            continue
        for (method, c), cell in g[g["method"] != "full"].groupby(["method", "compression"]):
            table_rows = rows_of[(rows_of["dataset"] == ds) & (rows_of["model"] == model) & (rows_of["method"] == method)
                                 & (rows_of["compression"] == c)].groupby("seed")["value"].sum()
            rows.append({"dataset": ds, "model": model, "method": method, "compression": c,
                         "embedding_params": cell["value"].mean(), "full_embedding_params": full.mean(),
                         "size_ratio_full_over_method": full.mean() / cell["value"].mean(),
                         "table_ratio_full_over_method": full.mean() / (table_rows.mean() * rank
                                                                        if len(table_rows) else cell["value"].mean())})
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "compression", "embedding_params",
                                       "full_embedding_params", "size_ratio_full_over_method",
                                       "table_ratio_full_over_method"])


SPEC = TableSpec(
    name="table4",
    caption="Test AUC (\\%) of online conversion prediction (rating $\\geq$ 4) with DUPN- and SAML-style "
            "business models (Table 4 analogue), users and items compressed, embedding table in \\% of "
            "the full one, on MovieLens-100k (real data) and on a \\emph{synthetic} power-law stream "
            "(planted item groups, Zipf popularity, rows in stream order; SAML's scenario = the user's "
            "home scenario; sizes in config/business.yaml), and on Amazon where run (SAML's scenario = "
            "the user's home top-level category): chronological 80/20 split, validation = the "
            "last 10\\% of the training part. "
            "Ours: mean $\\pm$ std over seeds (n = seeds). The paper's Table 4 (private data) is not "
            "comparable cell by cell.",
    rows=Axis("method", values=("full", "modulo", "cel_lite")),
    cols=(Axis("dataset", values=tuple(DATASETS), labels=DATASETS),
          Axis("model", values=MODELS, labels={"dupn": "DUPN", "saml": "SAML"},
               title="Business model"),
          Axis("compression", values=("100", "10", "1"))),
    metric="test_auc",
    filters={"task": "conversion", "variant": "online", "model": MODELS,
             "method": ("full", "modulo", "cel_lite")},
    aggregate=("fold", "seed"),
    scale={"test_auc": 100.0},
    digits=2,
    claims=(Claim("cel_lite", "modulo", BUDGETS),
            Claim("cel_lite", "full", BUDGETS, worse_at="100", margin=AUC_MARGIN)),
    sizes=size_ratios,
)

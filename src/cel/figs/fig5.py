"""Figure 5: CEL's learned item clusters ordered by mean rating, the 5 most-rated titles of each,
and the genre entropy of the clustering against random clusterings of the same sizes (A.1 / D.1).

Input contract: one run folder with ``assignments.parquet`` (side, entity, cluster; written by
every clustered method) and ``metrics.json`` (its run key), and the variant's data folder
``<results>/data/<dataset>/<variant>/`` with ``interactions.parquet`` (user, item, rating[,
train_ok]), ``folds.parquet`` (fold per interaction) and ``items.parquet`` (item, title, genres
as ``A|B|C``). Ratings and counts are the run's *training* rows (fold != the run's fold, and
``train_ok``); only items with at least one training rating are shown and counted.

Entropy, −Σ p log p (the paper's formula lacks the minus sign), natural log, both readings:

* ``per_genre`` (the formula of A.1/D.1): for each genre g, p_g(k) = share of g's items that
  lie in cluster k; H_g averaged over genres. Low: a genre concentrates in few clusters.
* ``per_cluster`` (the text: "entropy of the distribution of genres in each cluster"): for each
  cluster k, q_k(g) = share of k's genre labels that are g (a movie with several genres counts
  once per genre); H_k averaged over clusters. Low: a cluster holds few genres.

The random reference permutes the cluster labels over the same items (cluster sizes kept),
``n_random`` times from ``seed``; ``p_random_lower`` is the share of random clusterings with an
entropy at or below CEL's.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from cel.figs.common import pyplot, read_metrics, save, stem_of

NAME = "fig5"


def genre_matrix(genres: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(items, genres) 0/1 matrix from ``A|B`` strings, genres in sorted order."""
    lists = [[g for g in str(s).split("|") if g and g != "nan"] for s in genres]
    names = sorted({g for gs in lists for g in gs})
    col = {g: i for i, g in enumerate(names)}
    G = np.zeros((len(lists), len(names)), dtype=np.float64)
    for r, gs in enumerate(lists):
        G[r, [col[g] for g in gs]] = 1.0
    return G, names


def _entropy(P: np.ndarray, axis: int) -> np.ndarray:
    tot = P.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tot > 0, P / tot, 0.0)
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=axis)
    return h[np.squeeze(tot, axis=axis) > 0]


def genre_entropy(assign: np.ndarray, G: np.ndarray) -> dict[str, float]:
    """Both readings for one clustering: ``assign`` (items,) cluster labels, ``G`` (items, genres)."""
    labels, inv = np.unique(assign, return_inverse=True)
    C = np.zeros((len(labels), G.shape[1]))
    np.add.at(C, inv, G)                                  # (clusters, genres) label counts
    return {"per_genre": float(_entropy(C, axis=0).mean()), "per_cluster": float(_entropy(C, axis=1).mean())}


def entropy_table(assign: np.ndarray, G: np.ndarray, n_random: int = 200, seed: int = 0) -> pd.DataFrame:
    ours = genre_entropy(assign, G)
    rng = np.random.default_rng(seed)
    rand = pd.DataFrame([genre_entropy(rng.permutation(assign), G) for _ in range(n_random)])
    rows = []
    for reading in ("per_genre", "per_cluster"):
        r = rand[reading]
        rows.append({"reading": reading, "cel": ours[reading], "random_mean": float(r.mean()),
                     "random_sd": float(r.std(ddof=1)), "p_random_lower": float((r <= ours[reading]).mean()),
                     "n_random": n_random, "clusters": int(len(np.unique(assign))), "items": int(len(assign))})
    return pd.DataFrame(rows)


def load_inputs(run_dir: str | Path, data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items with cluster, training ratings) for one run; clear errors for missing files."""
    run_dir, data_dir = Path(run_dir), Path(data_dir)
    for f in (run_dir / "assignments.parquet", run_dir / "metrics.json", data_dir / "interactions.parquet",
              data_dir / "folds.parquet", data_dir / "items.parquet"):
        if not f.exists():
            raise FileNotFoundError(f"{NAME}: {f} is missing (Figure 5 needs a finished clustered run and its "
                                    "variant's data folder)")
    fold = int(read_metrics(run_dir)["run"]["fold"])
    a = pd.read_parquet(run_dir / "assignments.parquet")
    a = a[a["side"] == "item"][["entity", "cluster"]].rename(columns={"entity": "item"})
    if a.empty:
        raise ValueError(f"{NAME}: {run_dir}/assignments.parquet has no item clusters")
    inter = pd.read_parquet(data_dir / "interactions.parquet")
    folds = pd.read_parquet(data_dir / "folds.parquet")["fold"].to_numpy()
    keep = folds != fold
    if "train_ok" in inter:
        keep &= inter["train_ok"].to_numpy(dtype=bool)
    train = inter[keep][["user", "item", "rating"]]
    items = pd.read_parquet(data_dir / "items.parquet")[["item", "title", "genres"]].merge(a, on="item", how="inner")
    counts = train.groupby("item")["rating"].agg(n="count", mean="mean")
    items = items.join(counts, on="item").fillna({"n": 0}).astype({"n": int})
    return items[items["n"] > 0].reset_index(drop=True), train


def fig5_points(run_dir: str | Path, data_dir: str | Path, top: int = 5, n_random: int = 200,
                seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clusters, entropy): one row per cluster ordered by mean training rating (rank 1 = lowest),
    with size, rating count, mean/std rating and its ``top`` most-rated titles; and the entropy rows."""
    items, train = load_inputs(run_dir, data_dir)
    r = train.merge(items[["item", "cluster"]], on="item")
    stats = r.groupby("cluster")["rating"].agg(mean_rating="mean", std_rating="std", n_ratings="count")
    stats["n_items"] = items.groupby("cluster").size()
    stats["top_titles"] = items.sort_values(["n", "item"], ascending=[False, True]).groupby("cluster")["title"].apply(
        lambda t: " | ".join(t.head(top)))
    clusters = stats.sort_values("mean_rating").reset_index()
    clusters.insert(0, "rank", np.arange(1, len(clusters) + 1))
    G, _ = genre_matrix(items["genres"])
    return clusters, entropy_table(items["cluster"].to_numpy(), G, n_random, seed)


def fig5(run_dir: str | Path, data_dir: str | Path, out: str | Path, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    clusters, ent = fig5_points(run_dir, data_dir, **kw)
    plt = pyplot()
    k = len(clusters)
    fig = plt.figure(figsize=(13, 1.4 + 0.5 * k))
    ax = fig.add_axes([0.08, 0.1, 0.2, 0.82])
    y = np.arange(k)
    ax.barh(y, clusters["mean_rating"], xerr=clusters["std_rating"].fillna(0), color="C0", alpha=0.7, capsize=2)
    ax.set_yticks(y)
    ax.set_yticklabels([f"#{int(c)} ({n} items)" for c, n in zip(clusters["cluster"], clusters["n_items"])], fontsize=7)
    ax.set_xlabel("mean training rating (± std)")
    lo = float((clusters["mean_rating"] - clusters["std_rating"].fillna(0)).min())
    ax.set_xlim(max(0.0, lo - 0.3), float((clusters["mean_rating"] + clusters["std_rating"].fillna(0)).max()) + 0.2)
    ax.set_title("clusters ordered by mean rating", fontsize=9)
    for yi, titles in zip(y, clusters["top_titles"]):
        text = "; ".join(textwrap.shorten(t, 34, placeholder="…") for t in titles.split(" | "))
        ax.annotate(textwrap.fill(text, 95), xy=(1.03, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=6.5, annotation_clip=False)
    ax.set_ylim(-0.6, k - 0.4)
    for i, r in enumerate(ent.itertuples()):
        ex = fig.add_axes([0.76 + 0.12 * i, 0.3, 0.08, 0.5])
        ex.errorbar([1], [r.random_mean], yerr=[r.random_sd], fmt="o", color="C1", capsize=3)
        ex.plot([0], [r.cel], "D", color="C0")
        ex.set_xticks([0, 1])
        ex.set_xticklabels(["CEL", "random\n(same sizes)"], fontsize=7)
        ex.set_xlim(-0.5, 1.5)
        ex.set_title(f"genre entropy\n{r.reading.replace('_', ' ')}", fontsize=8)
        ex.tick_params(axis="y", labelsize=7)
    save(fig, out, clusters)
    ent.to_csv(f"{stem_of(out)}_entropy.csv", index=False)
    return clusters, ent

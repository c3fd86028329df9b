"""CEL inside a model the project did not write: a plain PyTorch two-tower rating model on
MovieLens-100k, trained with its own loop; its item ``nn.Embedding`` is swapped for
``cel.CELEmbedding`` (84 clusters = 5% of the 1,682 items) and both versions report test MSE.

    python examples/two_tower_ml100k.py --zip /path/to/ml-100k.zip [--fold 1] [--epochs 10] [--seed 0]

Data: GroupLens' own 80/20 split ``ml-100k/u{fold}.base`` / ``u{fold}.test``. The user code is
the block between the two markers (loading, model, loop, the CEL swap: three lines).
"""
from __future__ import annotations

import argparse
import os
import zipfile

import pandas as pd
import torch
from torch import nn

import cel

# --- user code -----------------------------------------------------------------------------------
def load(zip_path, name):                       # -> users (D,), items (D,), ratings (D,), 0-based ids
    df = pd.read_csv(zipfile.ZipFile(zip_path).open(f"ml-100k/{name}"), sep="\t", names=["u", "i", "r", "t"])
    return torch.tensor(df.u.values - 1), torch.tensor(df.i.values - 1), torch.tensor(df.r.values).float()

class TwoTower(nn.Module):
    def __init__(self, n_users, item_embedding, dim=32):
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), item_embedding      # <- the item table
        self.user_tower = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.item_tower = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.bias = nn.Parameter(torch.tensor(3.5))
    def forward(self, u, i):
        return (self.user_tower(self.user(u)) * self.item_tower(self.item(i))).sum(-1) + self.bias

def loss_fn(model, batch):                      # per-example squared error (B,)
    return (model(batch[0], batch[1]) - batch[2]) ** 2

def train_and_test(model, train, test, epochs=10, batch_size=1024, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = cel.ClusterSchedule(model.item, loss_fn, entities=1, optimizer=opt) \
        if isinstance(model.item, cel.CELEmbedding) else None              # CEL: learns the clusters
    for _ in range(epochs):
        for idx in torch.randperm(len(train[0])).split(batch_size):
            batch = tuple(t[idx] for t in train)
            loss = loss_fn(model, batch).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            if schedule: schedule.step(model, batch)
    model.eval()
    with torch.no_grad():
        return loss_fn(model, test).mean().item()
# --- end of user code ---------------------------------------------------------------------------


def compare(train, test, n_users, n_items, dim=32, num_clusters=84, epochs=10, seed=0, t1=80, t2=2,
            batch_size=1024, **kw) -> dict:
    """Test MSE of the same model with nn.Embedding and with CELEmbedding, and of the global mean.
    CEL's cadence is in optimiser steps: t2 = 2 (a split every 2nd batch until the budget), t1 = 80
    (Eq. 4 over all clusters about once per epoch of 1024-example batches); ``kw``: more CEL options."""
    torch.manual_seed(seed)
    full = TwoTower(n_users, nn.Embedding(n_items, dim), dim)
    torch.manual_seed(seed)
    items = cel.CELEmbedding(n_items, dim, num_clusters=num_clusters, seed=seed, t1=t1, t2=t2, **kw)  # the swap
    clustered = TwoTower(n_users, items, dim)
    return {"mean": ((test[2] - train[2].mean()) ** 2).mean().item(),
            "nn.Embedding": train_and_test(full, train, test, epochs, batch_size, seed),
            "CELEmbedding": train_and_test(clustered, train, test, epochs, batch_size, seed),
            "clusters": clustered.item.n_clusters,
            "item_params": {"nn.Embedding": n_items * dim, "CELEmbedding": clustered.item.num_parameters()}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_zip = os.path.join(os.environ.get("CEL_DATA_MIRROR", "../shared/data/movielens"), "ml-100k.zip")
    ap.add_argument("--zip", default=default_zip)
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clusters", type=int, default=84)
    a = ap.parse_args(argv)
    train, test = load(a.zip, f"u{a.fold}.base"), load(a.zip, f"u{a.fold}.test")
    out = compare(train, test, 943, 1682, num_clusters=a.clusters, epochs=a.epochs, seed=a.seed)
    print(f"ML-100k u{a.fold}, seed {a.seed}, {a.epochs} epochs: test MSE  nn.Embedding {out['nn.Embedding']:.4f}  "
          f"CELEmbedding ({out['clusters']} clusters) {out['CELEmbedding']:.4f}  global mean {out['mean']:.4f}")
    print(f"item-table numbers stored: nn.Embedding {out['item_params']['nn.Embedding']}, "
          f"CELEmbedding {out['item_params']['CELEmbedding']}")
    return out


if __name__ == "__main__":
    main()

"""examples/two_tower_ml100k.py: CEL in a plain PyTorch two-tower model trained by its own loop.

The synthetic test plants item clusters (the NMF model of Theorem 1, with a bias) and checks that
both the nn.Embedding and the CELEmbedding versions of the user's model beat the global-mean
predictor clearly, and that CEL reached its cluster budget. The real-data test runs the script's
``main`` on ML-100k (GroupLens split u1) for one epoch when the archive is available.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

from data_fixtures import real_mirror
from shared_fixtures import one_thread  # noqa: F401 (autouse fixture)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "two_tower_ml100k.py"


def load_example():
    spec = importlib.util.spec_from_file_location("two_tower_ml100k", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def planted(n_users=200, n_items=200, k=6, rank=4, d=12_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, C = torch.randn(n_users, rank, generator=g), torch.randn(k, rank, generator=g)
    z = torch.randint(k, (n_items,), generator=g)
    u, i = torch.randint(n_users, (d,), generator=g), torch.randint(n_items, (d,), generator=g)
    r = (3.5 + 0.6 * (U[u] * C[z[i]]).sum(1) + 0.2 * torch.randn(d, generator=g)).clamp(1, 5)
    cut = int(0.8 * d)
    return (u[:cut], i[:cut], r[:cut]), (u[cut:], i[cut:], r[cut:])


def test_user_code_is_about_twenty_lines():
    text = EXAMPLE.read_text()
    block = text.split("# --- user code")[1].split("# --- end of user code")[0]
    lines = [ln for ln in block.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) <= 30, len(lines)
    assert "cel.models" not in text                     # the model is the user's, not the project's
    assert re.search(r"cel\.CELEmbedding\(", text) and "nn.Embedding(n_items" in text


def test_example_on_synthetic_data_beats_the_global_mean():
    ex = load_example()
    train, test = planted()
    out = ex.compare(train, test, 200, 200, dim=8, num_clusters=10, epochs=10, seed=0, t1=19, t2=2,
                     batch_size=256, split_threshold=10)
    assert out["clusters"] == 10                        # the budget was reached by splits
    assert out["nn.Embedding"] < 0.9 * out["mean"], out
    assert out["CELEmbedding"] < 0.8 * out["mean"], out
    assert out["item_params"]["CELEmbedding"] < out["item_params"]["nn.Embedding"]


@pytest.mark.slow
def test_example_runs_on_movielens_100k(capsys):
    zip_path = real_mirror() / "ml-100k.zip"
    if not zip_path.exists():
        pytest.skip(f"no ML-100k archive at {zip_path}")
    out = load_example().main(["--zip", str(zip_path), "--epochs", "1", "--fold", "1"])
    assert "test MSE" in capsys.readouterr().out
    assert out["CELEmbedding"] < out["mean"] and out["nn.Embedding"] < out["mean"], out

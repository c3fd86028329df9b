import numpy as np
import pytest
import torch

from cel.metrics import bucket_mse, mse


def test_mse_hand_computed():
    assert mse(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 2.0])) == pytest.approx((0 + 1 + 4) / 3)


def test_mse_rejects_mismatch_and_empty():
    with pytest.raises(ValueError):
        mse(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError):
        mse(torch.zeros(0), torch.zeros(0))


def test_bucket_mse():
    pred = np.array([1.0, 2.0, 3.0, 4.0])
    target = np.array([0.0, 2.0, 1.0, 4.0])
    counts = np.array([1, 5, 30, 100])
    out = bucket_mse(pred, target, counts, [0, 20, 50])
    assert out == {"0-20": pytest.approx(0.5), "20-50": pytest.approx(4.0), "50-inf": pytest.approx(0.0)}

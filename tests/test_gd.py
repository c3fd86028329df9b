"""The project's plain GD optimiser equals torch.optim.SGD (no momentum) bit for bit, and a GD
run never imports torch._dynamo (the 2 s per-process cost GD exists to avoid)."""
import subprocess
import sys

import pytest
import torch

from cel.train.gd import GD


def _train(make_opt, steps=5, sparse=False):
    g = torch.Generator().manual_seed(0)
    emb = torch.nn.Embedding(50, 8, sparse=sparse)
    with torch.no_grad():
        emb.weight.copy_(torch.randn(50, 8, generator=g))
    w = torch.nn.Parameter(torch.randn(8, generator=g))
    opt = make_opt([{"params": [emb.weight], "lr": 0.1}, {"params": [w], "lr": 0.03}])
    for s in range(steps):
        ids = torch.randint(50, (64,), generator=g)
        loss = ((emb(ids) @ w - torch.rand(64, generator=g)) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return emb.weight.detach().clone(), w.detach().clone()


@pytest.mark.parametrize("sparse", [False, True])
def test_gd_equals_torch_sgd_bit_for_bit(sparse):
    a = _train(lambda groups: GD(groups, lr=1.0), sparse=sparse)
    b = _train(lambda groups: torch.optim.SGD(groups, lr=1.0), sparse=sparse)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    moved = _train(lambda groups: GD(groups, lr=1.0), steps=0, sparse=sparse)
    assert not torch.equal(a[0], moved[0])                       # it did train


def test_gd_state_dict_round_trip_and_bad_lr():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = GD([p], lr=0.5)
    other = GD([p], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert other.param_groups[0]["lr"] == 0.5 and other.state == {}
    with pytest.raises(ValueError, match="learning rate"):
        GD([p], lr=0.0)


def test_a_gd_run_does_not_import_dynamo(profile_path, tmp_path):
    prof = profile_path()
    code = ("import sys\nfrom cel.cli import main\n"
            f"main(['train', {str(prof)!r}, '--run', 'regression/synth/original/nmf/cel/cr10/f0/s0', "
            f"'--out', {str(tmp_path / 'run')!r}])\n"
            "print('DYNAMO' if 'torch._dynamo' in sys.modules else 'CLEAN')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "metrics.json").exists()
    assert r.stdout.strip().splitlines()[-1] == "CLEAN"

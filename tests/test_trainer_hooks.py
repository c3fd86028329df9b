"""The trainer's method hooks: test-time evaluation, StepAware updates, the Eq. 8 parameter set."""
import numpy as np
import torch

from cel.config import TrainConfig
from cel.embeddings import StepAware
from cel.embeddings.full import FullEmbedding
from cel.embeddings.jnkm import JNKMEmbedding
from cel.embeddings.prehash import PreHashEmbedding
from cel.models.nmf import NMF
from cel.models.pairs import PairIndex, sort_pairs
from cel.train.method_steps import MethodSteps
from cel.train.trainer import Trainer, full_batch_trainer


def _trainer(item_emb, steps=20, callbacks=None, evaluate=None, reg=0.0):
    rng = np.random.default_rng(0)
    codes = rng.choice(30 * item_emb.num_entities, 150, replace=False)
    u, i = codes // item_emb.num_entities, codes % item_emb.num_entities
    order = sort_pairs(u, i)
    pairs = PairIndex.build(u[order], i[order], 30, item_emb.num_entities)
    y = torch.as_tensor(rng.uniform(1, 5, len(order)), dtype=torch.float32)
    ue = FullEmbedding(30, 4, 100.0, FullEmbedding.Params(), torch.Generator().manual_seed(1))
    cfg = TrainConfig(lr=0.001, steps=steps, eval_every=5, log_every=10**6)
    return full_batch_trainer(NMF("abs"), ue, item_emb, pairs, y, cfg, reg=reg, evaluate=evaluate,
                            callbacks=callbacks, log=lambda m: None)


def test_evaluation_sees_the_test_time_model():
    emb = JNKMEmbedding(20, 4, 20.0, JNKMEmbedding.Params(), torch.Generator().manual_seed(0))
    seen = []
    t = _trainer(emb, evaluate=lambda _t: seen.append((t.item_emb.training, t.user_emb.training)) or {})
    t.fit()
    assert seen and all(mode == (False, False) for mode in seen)   # eval() during evaluation
    assert t.item_emb.training and t.user_emb.training             # train() again afterwards


def test_step_aware_methods_get_every_step():
    class Recorder(FullEmbedding):
        def __init__(self):
            super().__init__(20, 4, 100.0, FullEmbedding.Params(), torch.Generator().manual_seed(0))
            self.calls = []

        def on_step(self, step):
            assert not torch.is_grad_enabled()
            self.calls.append(step)

        def selectable(self):
            return True

    emb = Recorder()
    assert isinstance(emb, StepAware)
    _trainer(emb, steps=7, callbacks=[MethodSteps()]).fit()
    assert emb.calls == list(range(8))                  # 0 at fit start, then 1..7


def test_norm_regulariser_covers_embedding_parameters_only():
    emb = PreHashEmbedding(20, 4, 20.0, PreHashEmbedding.Params(), torch.Generator().manual_seed(0))
    t = _trainer(emb, reg=2.0)
    total, sse = t.losses(next(t.feed.batches()))
    emb_sq = sum(p.pow(2).sum() for m in (t.user_emb, emb) for p in m.embedding_parameters())
    assert torch.allclose(total - sse, 0.5 * 2.0 * emb_sq)          # the hash logits are not in it


def test_validation_waits_until_the_method_is_selectable():
    """CERP-like: no step may be selected before the method says so (here: from step 12)."""
    class Late(FullEmbedding):
        def __init__(self):
            super().__init__(20, 4, 100.0, FullEmbedding.Params(), torch.Generator().manual_seed(0))
            self.step = 0

        def on_step(self, step):
            self.step = step

        def selectable(self):
            return self.step >= 12

    emb = Late()
    t = _trainer(emb, steps=30, callbacks=[MethodSteps()], evaluate=lambda _t: {"val_mse": float(t.step)})
    t.fit()
    assert t.best_step == 15                       # the better evaluations at 5 and 10 were not eligible


def test_method_penalties_are_scaled_like_the_norm_regulariser():
    """λ_p / eTree / JNKM penalties weigh against the data as λ_reg does (Eq. 8): unchanged in a
    full batch (reg_scale 1), 1/D of it on a mean-loss stream, where the unscaled penalty of
    personalised CEL-Lite made every untie step diverge."""
    import dataclasses

    emb = JNKMEmbedding(20, 4, 20.0, JNKMEmbedding.Params(), torch.Generator().manual_seed(0))
    t = _trainer(emb, reg=0.0)
    batch = next(t.feed.batches())
    pen = emb.penalty()
    assert pen is not None and float(pen.detach()) > 0
    total, sse = t.losses(batch)
    assert torch.allclose(total - batch.scale * sse, pen, atol=1e-3)          # full batch: as before
    small = dataclasses.replace(batch, reg_scale=1e-3)
    total, sse = t.losses(small)
    assert torch.allclose(total - small.scale * sse, 1e-3 * pen, atol=1e-3)         # float32 sums of ~1700

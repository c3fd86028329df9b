"""DIN, the Deep Interest Network (Zhou et al., KDD 2018), as a CEL interaction model (Section 4,
Tables 2 and 3; Appendix A.1).

    w_h    = a(e_h, t)                      local activation unit, one scalar per history slot
    p      = Σ_h m_h · w_h · e_h            weighted sum pooling: NO softmax, as the original
    y      = MLP([u, p, t (, side fields of t)])      hidden 16 and 8 (A.1), one output

with u the user embedding, t the target item embedding, e_h the embeddings of the user's earlier
items and m_h their mask (padded slots have weight exactly 0). Every embedding comes from the
embedding methods: the history is looked up through the *item* method (``Trainer``'s
``predict``), so CEL's clustering, or any baseline's hashing, applies to the history too.
The output is a rating (regression) or a logit (conversion); there is no sigmoid inside.

The local activation unit (DIN's Fig. 2, with the input of the official implementation):
``a(h, t) = Linear_1(PReLU_36(W [h, t, h − t, h ⊙ t] + b))``. The first layer is evaluated
blockwise, ``W = [W_h, W_t, W_d, W_p]``:

    W [h, t, h − t, h ⊙ t] = h (W_h + W_d)ᵀ + t (W_t − W_d)ᵀ + (h ⊙ t) W_pᵀ

the same parameters and value as the concatenation, without the (B, H, 4R) tensor; the first
term does not depend on the target, so candidate evaluation (CEL reassignment, where the target
item varies) can compute it once (:meth:`ActivationUnit.keys`).

Activation: PReLU (per unit) in the activation unit and the MLP. The DIN paper proposes Dice
beside PReLU; Dice standardises each unit with *batch* statistics in training (moving averages
at inference), so a prediction would depend on the other rows of its batch, and on the
train/eval mode of the model, which the trainer does not switch (``test_time`` switches the
embedding methods). PReLU is the original's other choice and is row-wise.

Not included from A.1: the timestamp as a context feature (batches carry no timestamps). Side
features of the target item (A.1: category and brand on Amazon) are optional
(``side_features=("genre",)`` etc.); the default is none, as in Table 2's MovieLens rows.

Without ``history`` (e.g. the CEL schedule's generic reassignment, which scores candidates on
embeddings alone), the history is empty and ``p = 0``.

Shapes: B batch, H history length, R embedding dimension, A activation-unit width.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from cel.models.base import InteractionModel
from cel.models.layers import HIDDEN, check_nonneg, mlp, tower_over_candidates
from cel.models.side_features import DEFAULT_VOCAB, Features, SideFeatures

#: hidden width of DIN's local activation unit (Zhou et al. 2018, Fig. 2)
ATTENTION_HIDDEN = 36


class ActivationUnit(LazyModuleMixin, nn.Module):
    """``forward(history (B, H, R), target (B, R), mask (B, H)) -> weights (B, H)``, zero at
    padded slots, not normalised. ``weight`` (A, 4R) acts on [h, t, h − t, h ⊙ t]; R is read
    from the first call (materialised in place, ``nn.Linear``'s initialisation)."""

    cls_to_become = None

    def __init__(self, hidden: int = ATTENTION_HIDDEN):
        super().__init__()
        self.hidden = hidden
        self.weight = UninitializedParameter()        # (A, 4R)
        self.bias = UninitializedParameter()          # (A,)
        self.act = nn.PReLU(hidden)
        self.out = nn.Linear(hidden, 1)

    def initialize_parameters(self, history: torch.Tensor, *args, **kwargs) -> None:
        with torch.no_grad():
            fan_in = 4 * history.shape[-1]
            self.weight.materialize((self.hidden, fan_in), dtype=history.dtype)
            self.bias.materialize((self.hidden,), dtype=history.dtype)
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))        # as nn.Linear.reset_parameters
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def _blocks(self) -> tuple[torch.Tensor, ...]:
        return self.weight.chunk(4, dim=1)             # W_h, W_t, W_d, W_p: (A, R) each

    def keys(self, history: torch.Tensor) -> torch.Tensor:
        """(B, H, A) the target-independent part h (W_h + W_d)ᵀ + b."""
        w_h, _, w_d, _ = self._blocks()
        return F.linear(history, w_h + w_d, self.bias)

    def forward(self, history: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                keys: torch.Tensor | None = None) -> torch.Tensor:
        _, w_t, w_d, w_p = self._blocks()
        keys = self.keys(history) if keys is None else keys
        pre = keys + F.linear(target, w_t - w_d).unsqueeze(1) + F.linear(history * target.unsqueeze(1), w_p)
        B, H, A = pre.shape
        w = self.out(self.act(pre.reshape(B * H, A))).reshape(B, H)   # PReLU's channels on dim 1
        return w.masked_fill(~mask, 0.0)


class DIN(InteractionModel):
    """``forward(user_emb (B, R), item_emb (B, R), history (B, H, R), history_mask (B, H),
    features) -> (B,)``. ``nonneg`` is accepted for the run driver's convention and applies no
    constraint (nonnegativity belongs to NMF, Appendix D.1)."""

    history_len = 20            # H: the last 20 earlier items (the replay buffer size n = 20 of A.1)
    side_features: tuple[str, ...] = ()

    def __init__(self, nonneg: str = "none", history_len: int | None = None, hidden: tuple[int, ...] = HIDDEN,
                 attention_hidden: int = ATTENTION_HIDDEN, side_features: tuple[str, ...] | None = None,
                 vocab: int | dict[str, int] = DEFAULT_VOCAB):
        super().__init__()
        check_nonneg(nonneg)
        self.set_history_len(history_len, minimum=1, needs="DIN")
        if side_features is not None:
            self.side_features = tuple(side_features)
        self.attention = ActivationUnit(attention_hidden)
        self.fields = SideFeatures(self.side_features, vocab)
        self.tower = mlp(hidden, nn.PReLU)

    def pool(self, target: torch.Tensor, history: torch.Tensor | None,
             history_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, R) Σ_h w_h e_h over the real history slots (zeros without a history)."""
        if history is None or history.shape[1] == 0:
            return torch.zeros_like(target)
        if history_mask is None:
            history_mask = torch.ones(history.shape[:2], dtype=torch.bool, device=history.device)
        w = self.attention(history, target, history_mask)                        # (B, H)
        return torch.bmm(w.unsqueeze(1), history).squeeze(1)

    def candidate_scores(self, side: str, others: torch.Tensor, cand: torch.Tensor) -> torch.Tensor | None:
        """(E, C, n) outputs with candidate c (``cand`` (E, C, R)) at the scored ``side``'s position
        and each buffered interaction's other-side embedding (``others`` (E, n, R)), no history and no
        side features: exactly ``forward`` on those (E·C·n) pairs (CEL-Lite's restricted reassignment,
        target position only), the first layer applied once per side instead of per row."""
        own, other = (2, 0) if side == "item" else (0, 2)                       # tower input [u, pool, t, side...]
        return tower_over_candidates(self.tower, own, other, cand, others)

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor, history: torch.Tensor | None = None,
                history_mask: torch.Tensor | None = None, features: Features | None = None) -> torch.Tensor:
        parts = [user_emb, self.pool(item_emb, history, history_mask), item_emb]
        if self.side_features:
            parts.append(self.fields(features, item_emb)[0].flatten(1))          # (B, n·R)
        return self.tower(torch.cat(parts, -1)).squeeze(-1)                      # (B, (3 + n)·R) -> (B,)

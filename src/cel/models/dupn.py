"""DUPN-style model (Ni et al., "Perceive Your Users in Depth: Learning Universal User
Representations from Multiple E-commerce Tasks", KDD 2018) as a CEL interaction model (issue #16,
the Table 4 analogue).

No public implementation exists; a compact version from the paper's description:

    x_h   = e_h                                   item embedding of behaviour h (the embedding method)
    s_h   = LSTM(x_1 .. x_h)                       hidden state after h behaviours, oldest first
    p_h   = [type_emb(b_h), gap_emb(Δt_h)]         behaviour property: type and time gap (DUPN's
                                                   "behaviour property", fed to the attention)
    α     = softmax_h( v · tanh(W [s_h, p_h, t, u]) )   attention, the target item t (and the user)
                                                   as the query; padded slots get α = 0
    r     = Σ_h α_h s_h
    z     = ReLU(W_z [u, r])                       the shared user representation
    y_k   = head_k([z, t])                         one head per task (MLP 16-8-1, A.1)

Tasks: head 0 is the run's task (conversion logit, or rating); head 1 is **rating regression**.
The engine trains one task per run (``Task`` × ``Feed``), so the second task is an *auxiliary
loss*: while gradients are recorded and the batch carries the row's rating (``features["rating"]``,
the ``rating`` row feature), ``aux_weight`` × mean squared error of head 1 is added to the
objective through :class:`_AddAux` — the prediction's value is untouched (never a function of the
rating), only its backward pass carries the auxiliary gradient. It is a batch mean, on the same
footing as the replay feed's mean BCE (``loss: mean``).

On MovieLens the behaviour type is the history interaction's rating (1..5: "watched and disliked"
.. "loved"; DUPN's click / bookmark / cart / purchase) and the time gap is the log2-hour bucket
of the time since that interaction (``cel.train.feeds.ROW_FEATURES``).

The history is left-padded by the Feed (oldest first, real slots last); the LSTM runs on the
sequence rolled so that the real slots come first, so the hidden state at a real slot never saw
a padded one (padded slots change nothing). Without a history (CEL's generic reassignment scores
candidates on embeddings alone) r = 0; CEL-Lite's reassignment scores its (entity, candidate,
buffered interaction) triples that way through ``candidate_scores``, z once per user embedding.

Simplified from DUPN: one item id per behaviour (DUPN embeds several item features: shop, brand,
category...), no query input (the target item is the query), no user-profile features beyond the
user embedding, no multi-task tower sharing beyond z, and no incremental-update machinery.

Shapes: B batch, H history, R embedding dimension, S LSTM width, P property width.
"""
from __future__ import annotations

import torch
from torch import nn

from cel.models.base import InteractionModel
from cel.models.layers import HIDDEN, check_nonneg, mlp, tower_over_candidates

TYPE_VOCAB = 8          # behaviour types: 1..5 (ratings), 0 = padding
GAP_BUCKETS = 32        # time-gap buckets, = cel.train.feeds.GAP_BUCKETS (not imported: feeds imports cel.models)


class _AddAux(torch.autograd.Function):
    """Identity on ``pred``; its backward also sends gradient 1 into ``aux`` (a scalar loss), so the
    trainer's ``backward()`` of its own loss minimises ``loss + aux``."""

    @staticmethod
    def forward(ctx, pred, aux):
        return pred.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


class DUPN(InteractionModel):
    """``forward(user_emb (B, R), item_emb (B, R), history (B, H, R), history_mask (B, H), features)
    -> (B,)`` (head 0); ``heads(...)`` gives (B, 2): head 0 and the rating head."""

    history_len = 20
    side_features: tuple[str, ...] = ()
    row_features: tuple[str, ...] = ("history_type", "history_gap", "rating")

    def __init__(self, nonneg: str = "none", history_len: int | None = None, lstm: int = 16, prop: int = 4,
                 attention: int = 16, shared: int = 16, hidden: tuple[int, ...] = HIDDEN,
                 aux_weight: float = 0.1):
        super().__init__()
        check_nonneg(nonneg)
        self.set_history_len(history_len, minimum=1, needs="DUPN")
        if aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = aux_weight
        self.S = lstm
        self.lstm = nn.LSTM(input_size=1, hidden_size=lstm, batch_first=True)    # input size set at first call
        self._lstm_ready = False
        self.type_emb = nn.Embedding(TYPE_VOCAB, prop, padding_idx=0)
        self.gap_emb = nn.Embedding(GAP_BUCKETS, prop, padding_idx=0)
        self.att = nn.LazyLinear(attention)
        self.att_v = nn.Linear(attention, 1, bias=False)
        self.shared = nn.LazyLinear(shared)
        self.heads_ = nn.ModuleList([mlp(hidden, nn.PReLU), mlp(hidden, nn.PReLU)])
        self.last_aux: float | None = None

    def _ready(self, R: int) -> None:
        if not self._lstm_ready:                     # an LSTM of input size R, same parameter objects
            fresh = nn.LSTM(input_size=R, hidden_size=self.S, batch_first=True)
            with torch.no_grad():
                for name, p in self.lstm.named_parameters():
                    q = getattr(fresh, name)
                    p.data = q.data.clone()
            self.lstm.input_size = R
            self.lstm._flat_weights = [getattr(self.lstm, n) for n in self.lstm._flat_weights_names]
            self._lstm_ready = True

    # -- pieces ---------------------------------------------------------------------------------
    def encode(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, H, S) LSTM states at each slot (zero at padded slots), oldest first as given."""
        B, H, _ = history.shape
        n_pad = H - mask.sum(1)                                             # (B,) left padding
        idx = (torch.arange(H, device=history.device)[None, :] + n_pad[:, None]) % H       # real slots first
        rolled = history.gather(1, idx[..., None].expand_as(history))
        rmask = mask.gather(1, idx)
        states, _ = self.lstm(rolled * rmask[..., None])                   # causal: real slots see real slots only
        back = (torch.arange(H, device=history.device)[None, :] - n_pad[:, None]) % H       # undo the roll
        states = states.gather(1, back[..., None].expand(B, H, self.S))
        return states * mask[..., None]

    def pool(self, user: torch.Tensor, target: torch.Tensor, history: torch.Tensor | None,
             mask: torch.Tensor | None, features) -> torch.Tensor:
        """(B, S) Σ_h α_h s_h (zeros without a real history slot)."""
        B = target.shape[0]
        if history is None or history.shape[1] == 0:
            return target.new_zeros(B, self.S)
        if mask is None:
            mask = torch.ones(history.shape[:2], dtype=torch.bool, device=history.device)
        H = history.shape[1]
        states = self.encode(history, mask)                                 # (B, H, S)
        feats = features or {}
        zeros = torch.zeros(B, H, dtype=torch.int64, device=history.device)
        types = feats["history_type"][0] if "history_type" in feats else zeros
        gaps = feats["history_gap"][0] if "history_gap" in feats else zeros
        types, gaps = types.clamp(0, TYPE_VOCAB - 1) * mask, gaps.clamp(0, GAP_BUCKETS - 1) * mask
        props = torch.cat([self.type_emb(types), self.gap_emb(gaps)], -1)   # (B, H, 2P)
        q = torch.cat([target, user], -1).unsqueeze(1).expand(B, H, -1)
        score = self.att_v(torch.tanh(self.att(torch.cat([states, props, q], -1)))).squeeze(-1)
        alpha = torch.softmax(score.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)
        return torch.bmm(alpha.unsqueeze(1), states).squeeze(1)

    def heads(self, user_emb, item_emb, history=None, history_mask=None, features=None) -> torch.Tensor:
        """(B, 2): the run's task (head 0) and rating regression (head 1) on the shared z."""
        self._ready(user_emb.shape[-1])
        r = self.pool(user_emb, item_emb, history, history_mask, features)
        x = torch.cat([self.represent(user_emb, r), item_emb], -1)
        return torch.cat([h(x) for h in self.heads_], -1)

    def represent(self, user_emb: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """(B, shared) z = ReLU(W_z [u, r]), the shared user representation."""
        return torch.relu(self.shared(torch.cat([user_emb, r], -1)))

    def candidate_scores(self, side: str, others: torch.Tensor, cand: torch.Tensor) -> torch.Tensor | None:
        """(E, C, n) outputs with candidate c (``cand`` (E, C, R)) at the scored ``side``'s position and
        each buffered interaction's other-side embedding (``others`` (E, n, R)), no history and no
        features: exactly ``forward`` (head 0) on those (E·C·n) pairs (CEL-Lite's reassignment).
        Without a history r = 0, so z depends on the user alone: it is computed once per user
        embedding, and head 0's input [z, t] is the sum of [z, 0] and [0, t], one full-width slot of
        :func:`~cel.models.layers.tower_over_candidates` (its first layer once per side, the hidden
        layers per (entity, candidate, interaction)); the rating head is not evaluated. None while
        the model is still lazy."""
        if isinstance(self.shared, nn.modules.lazy.LazyModuleMixin) and self.shared.has_uninitialized_params():
            return None
        users, items = (others, cand) if side == "item" else (cand, others)
        z = self.represent(users, users.new_zeros(*users.shape[:-1], self.S))       # (..., shared)
        u_in = torch.cat([z, z.new_zeros(*z.shape[:-1], items.shape[-1])], -1)    # [z, 0]
        t_in = torch.cat([items.new_zeros(*items.shape[:-1], z.shape[-1]), items], -1)    # [0, t]
        c_in, o_in = (t_in, u_in) if side == "item" else (u_in, t_in)
        return tower_over_candidates(self.heads_[0], 0, 0, c_in, o_in)

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor, history: torch.Tensor | None = None,
                history_mask: torch.Tensor | None = None, features=None) -> torch.Tensor:
        y = self.heads(user_emb, item_emb, history, history_mask, features)
        pred = y[:, 0]
        if torch.is_grad_enabled() and self.aux_weight > 0 and features and "rating" in features:
            ids, mask = features["rating"]
            m = mask[:, 0].to(y.dtype)
            err = (y[:, 1] - ids[:, 0].to(y.dtype)).pow(2)
            aux = self.aux_weight * (err * m).sum() / m.sum().clamp_min(1.0)
            self.last_aux = float(aux.detach())
            pred = _AddAux.apply(pred, aux)
        return pred

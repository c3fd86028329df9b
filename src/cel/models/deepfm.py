"""DeepFM (Guo et al., IJCAI 2017) as a CEL interaction model (Section 4.1.2, Table 3; A.1).

Fields: the user embedding u, the item embedding t (both from the embedding methods, so CEL or a
hashing baseline compresses them) and the item's sparse side features (``genre`` on MovieLens,
``category`` and ``brand`` on Amazon; :class:`~cel.models.side_features.SideFeatures`: the
model's own, uncompressed tables, multi-valued fields mean-pooled over their mask). With
V = [v_1 … v_F] (B, F, R) the field vectors:

    y = y_first + y_FM + y_deep                       (no sigmoid: a rating or a logit)
    y_first = b + w_uᵀ u + w_tᵀ t + Σ_side mean_{x ∈ field} w[x]     first order
    y_FM    = Σ_{f < g} <v_f, v_g> = ½ Σ_r ((Σ_f v_fr)² − Σ_f v_fr²) pairwise interactions
    y_deep  = MLP([v_1, …, v_F])                      hidden 16 and 8 (A.1), ReLU (Guo et al.)

FM and deep parts share the field vectors, as in DeepFM. The first-order weight of the user and
of the item is a linear function of their embedding (w_uᵀ u), not a per-id scalar: the
interaction model never sees ids (``InteractionModel``), and a per-id table would be an
uncompressed id embedding beside the compressed one. Side features keep per-value scalars.

A batch without the side features (the CEL schedule's generic reassignment and split
statistics call the model on embeddings alone) leaves those fields at zero. DeepFM uses no
history; a batch that carries one anyway has it ignored.

Shapes: B batch, F fields (2 + side features), R embedding dimension.
"""
from __future__ import annotations

import torch
from torch import nn

from cel.models.base import InteractionModel
from cel.models.layers import HIDDEN, check_nonneg, mlp, tower_over_candidates
from cel.models.side_features import DEFAULT_VOCAB, Features, SideFeatures


def fm_interactions(fields: torch.Tensor) -> torch.Tensor:
    """(B, F, R) field vectors -> (B,) Σ_{f<g} <v_f, v_g> in O(F R) (Rendle's identity)."""
    return 0.5 * (fields.sum(1).square() - fields.square().sum(1)).sum(-1)


class DeepFM(InteractionModel):
    """``forward(user_emb (B, R), item_emb (B, R), features) -> (B,)``. ``nonneg`` is accepted for
    the run driver's convention and applies no constraint (nonnegativity is NMF's, D.1)."""

    side_features: tuple[str, ...] = ("genre",)

    def __init__(self, nonneg: str = "none", side_features: tuple[str, ...] | None = None,
                 vocab: int | dict[str, int] = DEFAULT_VOCAB, hidden: tuple[int, ...] = HIDDEN):
        super().__init__()
        check_nonneg(nonneg)
        if side_features is not None:
            self.side_features = tuple(side_features)
        self.fields = SideFeatures(self.side_features, vocab, first_order=True)
        self.linear = nn.LazyLinear(1)                     # b + [w_u, w_t]ᵀ [u, t]
        self.deep = mlp(hidden, lambda _: nn.ReLU())

    def field_vectors(self, user_emb: torch.Tensor, item_emb: torch.Tensor,
                      features: Features | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, R) field vectors [u, t, side fields] and (B,) first-order terms of the side fields."""
        side, side_first = self.fields(features, item_emb)
        return torch.cat([user_emb.unsqueeze(1), item_emb.unsqueeze(1), side], 1), side_first

    def candidate_scores(self, side: str, others: torch.Tensor, cand: torch.Tensor) -> torch.Tensor | None:
        """(E, C, n) outputs with candidate c (``cand`` (E, C, R)) in the scored ``side``'s field and
        each buffered interaction's other-side embedding (``others`` (E, n, R)) in the other, no side
        features: exactly ``forward`` on those (E·C·n) pairs (CEL-Lite's reassignment, the candidate
        at the target position only), with the candidate-free parts computed once per side."""
        if isinstance(self.linear, nn.modules.lazy.LazyModuleMixin) and self.linear.has_uninitialized_params():
            return None
        own, other = (1, 0) if side == "item" else (0, 1)                       # fields [u, t, side...]
        deep = tower_over_candidates(self.deep, own, other, cand, others)
        if deep is None:
            return None
        R, wl = cand.shape[-1], self.linear.weight[0]                           # (2R,)
        first = ((cand @ wl[own * R:(own + 1) * R])[:, :, None] + (others @ wl[other * R:(other + 1) * R])[:, None, :]
                 + self.linear.bias)
        return first + torch.bmm(cand, others.transpose(1, 2)) + deep           # FM: <c, o>

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor, features: Features | None = None,
                history: torch.Tensor | None = None, history_mask: torch.Tensor | None = None) -> torch.Tensor:
        V, side_first = self.field_vectors(user_emb, item_emb, features)
        first = self.linear(torch.cat([user_emb, item_emb], -1)).squeeze(-1) + side_first
        return first + fm_interactions(V) + self.deep(V.flatten(1)).squeeze(-1)

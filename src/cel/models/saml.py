"""SAML-style multi-scenario model (Chen et al., "Scenario-aware Mutual Learning for
Multi-scenario Recommendation", 2020) as a CEL interaction model (issue #16, Table 4 analogue).

No public implementation exists; this is a compact version built from the paper's description
(/work/shared/paper/related-abstracts.md), with every entity embedding coming from the project's
embedding methods (so CEL / CEL-Lite clustering applies to user, target-item and history ids):

1. **Scenario-aware feature representation.** Every embedding e (user, target item, history
   items) is mapped into a *global* subspace, ``P_g e``, and into the row's *scenario-specific*
   subspace, ``P_s e`` (one (R, R) projection per scenario s). SAML keeps a global and a
   scenario-specific embedding table per feature; here the project's one table per side is
   shared and the subspaces are projections of it (a scenario-specific *table* per scenario would
   multiply the very tables CEL compresses). The attention module is scenario-aware in the same
   way: the history is pooled by softmax attention with the target as query in each subspace.
2. **Auxiliary network** (shared knowledge): an MLP on the global representation
   [u_g, t_g, p_g] giving a logit ``a``; every row trains it.
3. **Multi-branch network**: one branch per scenario, an MLP on [global, scenario-specific]
   representation: h_k = branch_k(x) (B, K, D) for every branch k.
4. **Mutual unit**: learned scenario embeddings c_k give the similarity of scenarios,
   ``W[s, k] = softmax_{k != s}(c_s · c_k)``; the row's branch output is mixed with the others,
   ``m_s = h_s + g_s · Σ_{k≠s} W[s, k] h_k`` (g_s = sigmoid of a learned gate per scenario).
   The prediction is ``y = out_s(m_s) + a`` (a logit, or a rating for regression).

A row without a scenario (CEL's generic reassignment scores candidates on embeddings alone) uses
the uniform mixture over scenarios: the mean projection, the mean of the branch outputs.
CEL-Lite's reassignment scores (entity, candidate, buffered interaction) triples that way through
``candidate_scores``: everything that does not depend on the candidate is computed once per side.

Scenarios on MovieLens-100k: the user's **age band** from ``u.user``, (<25, 25-34, 35-44, ≥45):
234 / 310 / 194 / 205 users, close to quartiles, so every branch has data; ages are ordinal, so
the learned similarity has an expected shape (neighbouring bands alike). Occupation has 21 values,
eight of them under 20 users (7 doctors, 7 homemakers), and any grouping of them is arbitrary.
``user_scenarios`` reads them (a per-user feature ``scenario``, (N, 1) ids 1..K, 0 = unknown).

Shapes: B batch, H history, R embedding dimension, K scenarios, D branch width.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parameter import UninitializedParameter

from cel.models.base import InteractionModel
from cel.models.layers import HIDDEN, check_nonneg, mlp, tower_over_candidates

#: age-band edges of the MovieLens scenarios: < 25, 25-34, 35-44, >= 45
AGE_EDGES = (25, 35, 45)
N_SCENARIOS = len(AGE_EDGES) + 1


def user_scenarios(archive: str | Path, n_users: int, member: str = "ml-100k/u.user",
                   edges: tuple[int, ...] = AGE_EDGES) -> tuple[torch.Tensor, torch.Tensor]:
    """((N, 1) scenario ids 1..len(edges)+1, (N, 1) mask) from u.user's age, users in prepared order
    (raw ids sorted, as :func:`cel.data.prepare.remap`: every ML-100k user has ratings)."""
    with zipfile.ZipFile(archive) as z:
        text = z.read(member).decode("latin-1")
    rows = [line.split("|") for line in io.StringIO(text).read().splitlines() if line.strip()]
    raw = np.array([int(r[0]) for r in rows])
    age = np.array([int(r[1]) for r in rows])
    if len(raw) != n_users:
        raise ValueError(f"{archive}:{member}: {len(raw)} users, the prepared data has {n_users}")
    band = np.digitize(age[np.argsort(raw)], edges) + 1
    ids = torch.as_tensor(band, dtype=torch.int64)[:, None]
    return ids, ids > 0


def masked_softmax_pool(query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, R) query, (B, H, R) keys, (B, H) mask -> (B, R) softmax-attention pool over real slots
    (zero where a row has none; padded slots get weight exactly 0)."""
    score = (keys * query.unsqueeze(1)).sum(-1) / keys.shape[-1] ** 0.5
    score = score.masked_fill(~mask, float("-inf"))
    w = torch.softmax(score, -1).nan_to_num(0.0)                      # all-masked rows: 0
    return torch.bmm(w.unsqueeze(1), keys).squeeze(1)


class MutualUnit(nn.Module):
    """``forward(h (B, K, D)) -> (B, K, D)``: h_s + g_s Σ_{k≠s} W[s, k] h_k with W the softmax over
    the other scenarios of the learned similarities c_s · c_k."""

    def __init__(self, scenarios: int, dim: int = 8):
        super().__init__()
        self.codes = nn.Parameter(torch.randn(scenarios, dim) * 0.1)
        self.gate = nn.Parameter(torch.zeros(scenarios))                 # sigmoid(0) = 0.5 at start
        self.enabled = True

    def similarity(self) -> torch.Tensor:
        """(K, K) W: rows sum to 1 over the other scenarios, zero diagonal (K = 1: zero)."""
        K = len(self.codes)
        sim = self.codes @ self.codes.T
        eye = torch.eye(K, dtype=torch.bool, device=sim.device)
        w = torch.softmax(sim.masked_fill(eye, float("-inf")), -1)
        return w.nan_to_num(0.0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.enabled or len(self.codes) < 2:
            return h
        mixed = torch.einsum("sk,bkd->bsd", self.similarity(), h)
        return h + torch.sigmoid(self.gate)[None, :, None] * mixed


class SAML(InteractionModel):
    """``forward(user_emb (B, R), item_emb (B, R), history (B, H, R), history_mask (B, H),
    features{"scenario": ((B, 1) ids 1..K, mask)}) -> (B,)``."""

    history_len = 20
    side_features: tuple[str, ...] = ()
    user_features: tuple[str, ...] = ("scenario",)

    def __init__(self, nonneg: str = "none", history_len: int | None = None, scenarios: int = N_SCENARIOS,
                 branch: int = 16, hidden: tuple[int, ...] = HIDDEN, mutual: bool = True, rank: int | None = None):
        super().__init__()
        check_nonneg(nonneg)
        self.set_history_len(history_len, minimum=0)
        if scenarios < 1:
            raise ValueError(f"SAML needs >= 1 scenario, got {scenarios}")
        self.K, self.D = scenarios, branch
        # R is read from the first call (materialised in place, so an optimiser built before holds them)
        self.proj_g = UninitializedParameter()                           # (R, R) global subspace
        self.proj_s = UninitializedParameter()                           # (K, R, R) scenario subspaces
        self.branch_in = UninitializedParameter()                        # (K, 6R, D) branch input layers
        self.aux = mlp(hidden, nn.PReLU)                                  # auxiliary shared network
        self.branch_b = nn.Parameter(torch.zeros(scenarios, branch))
        self.branch_act = nn.PReLU(branch)
        self.out_w = nn.Parameter(torch.randn(scenarios, branch) / branch ** 0.5)
        self.out_b = nn.Parameter(torch.zeros(scenarios))
        self.mutual = MutualUnit(scenarios)
        self.mutual.enabled = mutual
        if rank is not None:
            self._build(rank)

    def _build(self, R: int) -> None:
        """Materialise the projections (identity + small noise) and the branch input layers."""
        K, D = self.K, self.D
        with torch.no_grad():
            self.proj_g.materialize((R, R))
            self.proj_g.copy_(torch.eye(R) + 0.1 * torch.randn(R, R))
            self.proj_s.materialize((K, R, R))
            self.proj_s.copy_(torch.eye(R).expand(K, R, R) + 0.1 * torch.randn(K, R, R))
            self.branch_in.materialize((K, 6 * R, D))
            self.branch_in.copy_(torch.randn(K, 6 * R, D) / (6 * R) ** 0.5)

    def scenario_weights(self, features, B: int, device) -> torch.Tensor:
        """(B, K) one-hot of each row's scenario; uniform 1/K where it is unknown or absent."""
        uniform = torch.full((B, self.K), 1.0 / self.K, device=device)
        if not features or "scenario" not in features:
            return uniform
        ids, mask = features["scenario"]
        ids, mask = ids[:, 0], mask[:, 0] & (ids[:, 0] > 0)
        if bool(((ids > self.K) & mask).any()):
            raise ValueError(f"SAML: scenario id {int(ids.max())} beyond the {self.K} scenarios")
        onehot = F.one_hot((ids - 1).clamp(0, self.K - 1), self.K).to(uniform.dtype)
        return torch.where(mask[:, None], onehot, uniform)

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor, history: torch.Tensor | None = None,
                history_mask: torch.Tensor | None = None, features=None) -> torch.Tensor:
        B, R = user_emb.shape
        if isinstance(self.proj_g, UninitializedParameter):
            self._build(R)
        w = self.scenario_weights(features, B, user_emb.device)                      # (B, K)
        P_s = torch.einsum("bk,kij->bij", w, self.proj_s)                             # (B, R, R) the row's subspace
        u_g, t_g = user_emb @ self.proj_g.T, item_emb @ self.proj_g.T
        u_s, t_s = torch.bmm(P_s, user_emb.unsqueeze(-1)).squeeze(-1), torch.bmm(P_s, item_emb.unsqueeze(-1)).squeeze(-1)
        if history is None or history.shape[1] == 0:
            p_g = p_s = torch.zeros_like(user_emb)
        else:
            if history_mask is None:
                history_mask = torch.ones(history.shape[:2], dtype=torch.bool, device=history.device)
            h_g = history @ self.proj_g.T                                             # (B, H, R)
            h_s = torch.einsum("bij,bhj->bhi", P_s, history)
            p_g, p_s = masked_softmax_pool(t_g, h_g, history_mask), masked_softmax_pool(t_s, h_s, history_mask)
        glob = torch.cat([u_g, t_g, p_g], -1)                                         # (B, 3R)
        a = self.aux(glob).squeeze(-1)                                                # auxiliary network
        x = torch.cat([glob, u_s, t_s, p_s], -1)                                      # (B, 6R)
        h = self.branch_act((torch.einsum("bi,kid->bkd", x, self.branch_in) + self.branch_b).reshape(B * self.K, self.D))
        return self.mix(h.reshape(B, self.K, self.D), w) + a

    def mix(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(B, K, D) branch activations, (B, K) scenario weights -> (B,) Σ_s w_s out_s(m_s): the mutual
        unit, each branch's output layer and the row's scenario mixture (affine in h)."""
        out = (self.mutual(h) * self.out_w).sum(-1) + self.out_b                      # (B, K) each branch's output
        return (w * out).sum(-1)

    def candidate_scores(self, side: str, others: torch.Tensor, cand: torch.Tensor) -> torch.Tensor | None:
        """(E, C, n) outputs with candidate c (``cand`` (E, C, R)) at the scored ``side``'s position and
        each buffered interaction's other-side embedding (``others`` (E, n, R)), no history and no
        scenario: exactly ``forward`` on those (E·C·n) pairs (CEL-Lite's reassignment). Without a
        scenario every row has the same weights w = 1/K, hence the same subspace P̄ = Σ_k w_k P_k, and
        the history pools are 0; so each side's projections [e_g, e_s], its share of every branch's
        input layer and of the auxiliary network's first layer are computed once per embedding, and
        ``mix`` (affine in the activations, for fixed w) is folded into one (K·D) vector read off the
        unit vectors. Per (entity, candidate, interaction) only the branch activation, that dot product
        and the auxiliary network's hidden layers run. None while the model is still lazy."""
        if isinstance(self.proj_g, UninitializedParameter):
            return None
        own, other = (1, 0) if side == "item" else (0, 1)                        # slots: [u_g, t_g, p_g, u_s, t_s, p_s]
        w = self.scenario_weights(None, 1, cand.device).to(cand.dtype)           # (1, K) uniform
        P_s = torch.einsum("bk,kij->bij", w, self.proj_s)[0]                      # (R, R)
        cand_g, cand_s, oth_g, oth_s = (x @ P.T for x in (cand, others) for P in (self.proj_g, P_s))
        aux = tower_over_candidates(self.aux, own, other, cand_g, oth_g)          # (E, C, n)
        if aux is None:
            return None
        K, D, R = self.K, self.D, cand.shape[-1]
        W = self.branch_in.view(K, 6, R, D)                                       # per slot

        def branch_part(g: torch.Tensor, s: torch.Tensor, slot: int) -> torch.Tensor:
            """(..., K·D) every branch's input layer on [e_g, e_s] in slots ``slot``, ``slot`` + 3."""
            return torch.cat([g, s], -1) @ W[:, [slot, slot + 3]].permute(1, 2, 0, 3).reshape(2 * R, K * D)

        basis = torch.eye(K * D, dtype=cand.dtype, device=cand.device)
        basis = torch.cat([basis.new_zeros(1, K * D), basis]).view(-1, K, D)      # 0, e_1 .. e_KD
        y = self.mix(basis, w.expand(len(basis), K))
        bias, v = y[0], y[1:] - y[0]                                              # mix(h) = v · h + bias
        pre = (branch_part(cand_g, cand_s, own) + self.branch_b.flatten())[:, :, None] + branch_part(oth_g, oth_s, other)[:, None]
        E, C, n, _ = pre.shape
        h = self.branch_act(pre.view(-1, D)).view(-1, K * D)                      # (E·C·n, K·D)
        return (h @ v + bias).view(E, C, n) + aux

"""HashGNN: learned binary hash codes from a graph neural network.

Tan, Liu, Zhao, Yang, Zhou, Huang, Li, Zha, Hu. "Learning to Hash with Graph Neural Networks
for Recommender Systems", WWW 2020, 1988-1998 (the CEL paper's [20]).

Mechanism of the original: a GraphSAGE encoder over the user-item graph gives each node a
representation; a hash layer maps it to a binary code sign(tanh(W h)); the two are trained end
to end, through the sign by a straight-through estimator (STE) "with guidance": the code is
partly replaced by its continuous value early in training, and the replacement fades until
training is back to plain STE. The CEL paper uses HashGNN as a learned hash function for
embedding sharing: the function is pretrained on the full training data first (the paper allows
it), then entities with the same code share one embedding row, learned like any other.

Here (Table 2/7 protocol, the item side):
* encoder: one GraphSAGE layer with mean aggregation on the bipartite training graph,
  h_v = tanh(W_self x_v + W_nb · mean_{w in N(v)} x_w), with free input vectors x (hidden size H)
  for users and items; hash layer c_j = tanh(W_hash h_j) ∈ (-1, 1)^L for the hashed side, the
  same form (own weights, no sign) for the other side;
* code b_j = sign(c_j) with STE (forward sign, backward identity); guidance: each bit is replaced
  by c_j with probability p, p falling linearly from ``guidance`` to 0 over the pretraining;
* pretraining loss: rating reconstruction, mean of (x_ij - μ - s·⟨c_i, b_j⟩/L)² with learned s
  (the rating task replaces the original's ranking loss), plus ``link_weight`` times the original's
  link reconstruction (logistic loss of observed pairs against as many sampled non-pairs);
  full-batch Adam, ``pretrain_epochs`` epochs, learning rate ``pretrain_lr``;
* code length L = floor(log2 M_q) bits: the code read as a binary number is the row, so the
  table has 2^L <= M_q rows (within the budget). Rows no entity maps to are still stored.
  Before ``fit_data`` (the ``DataAware`` hook, which pretrains) the row is id mod 2^L.

Stored at test time: the 2^L rows plus one L-bit code per entity (``index_entries() = M``; the
encoder is not needed once the codes exist). Gradient averaging (Eq. 7) as for Modulo.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cel.errors import ConfigError
from cel.embeddings.base import EmbeddingMethod, MethodParams, TrainingData, init_vectors


@dataclass(frozen=True)
class HashGNNParams(MethodParams):
    hidden: int = 64            # H: input and GraphSAGE width
    pretrain_epochs: int = 300  # full-batch Adam epochs of hash pretraining
    pretrain_lr: float = 0.01
    guidance: float = 0.5       # initial probability of replacing a bit by its continuous value
    link_weight: float = 1.0    # weight of the link reconstruction loss
    grad_avg: bool = True       # divide a row's gradient by the entities sharing it (Eq. 7)

    def __post_init__(self):
        super().__post_init__()
        if self.hidden < 1 or self.pretrain_epochs < 0 or self.pretrain_lr <= 0 or not 0 <= self.guidance <= 1:
            raise ConfigError("config invalid value at 'method': hidden >= 1, pretrain_epochs >= 0, "
                              "pretrain_lr > 0, 0 <= guidance <= 1")


def mean_adjacency(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """(n_rows, n_cols) sparse CSR matrix averaging over each row's neighbours."""
    deg = torch.bincount(rows, minlength=n_rows).clamp_min(1).to(torch.float32)
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), 1.0 / deg[rows], (n_rows, n_cols), check_invariants=True)
    return coo.coalesce().to_sparse_csr()


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c):
        return torch.where(c >= 0, torch.ones_like(c), -torch.ones_like(c))

    @staticmethod
    def backward(ctx, g):
        return g


class HashEncoder(nn.Module):
    """One GraphSAGE layer per side plus the hash layers (used only for pretraining)."""

    def __init__(self, n_entities: int, n_other: int, hidden: int, bits: int, generator: torch.Generator):
        super().__init__()

        def lin(i, o):
            w = torch.randn(o, i, generator=generator) / math.sqrt(i)
            return nn.Parameter(w)

        self.x_e = nn.Parameter(0.1 * torch.randn(n_entities, hidden, generator=generator))
        self.x_o = nn.Parameter(0.1 * torch.randn(n_other, hidden, generator=generator))
        self.w_e, self.n_e, self.h_e = lin(hidden, hidden), lin(hidden, hidden), lin(hidden, bits)
        self.w_o, self.n_o, self.h_o = lin(hidden, hidden), lin(hidden, hidden), lin(hidden, bits)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, adj_e: torch.Tensor, adj_o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(continuous codes of the hashed side (M, L), of the other side (N, L))."""
        h_e = torch.tanh(self.x_e @ self.w_e.T + (adj_e @ self.x_o) @ self.n_e.T)
        h_o = torch.tanh(self.x_o @ self.w_o.T + (adj_o @ self.x_e) @ self.n_o.T)
        return torch.tanh(h_e @ self.h_e.T), torch.tanh(h_o @ self.h_o.T)


def pretrain_codes(data: TrainingData, bits: int, params: HashGNNParams,
                   generator: torch.Generator, log=None) -> tuple[torch.Tensor, list[float]]:
    """(M, L) {-1, +1} codes of the entities and the per-epoch pretraining loss."""
    e, o, x = data.entity, data.other, data.ratings.to(torch.float32)
    adj_e = mean_adjacency(e, o, data.num_entities, data.num_other)
    adj_o = mean_adjacency(o, e, data.num_other, data.num_entities)
    enc = HashEncoder(data.num_entities, data.num_other, params.hidden, bits, generator)
    opt = torch.optim.Adam(enc.parameters(), lr=params.pretrain_lr)
    mu = x.mean()
    losses = []
    epochs = params.pretrain_epochs
    for epoch in range(epochs):
        opt.zero_grad()
        c_e, c_o = enc(adj_e, adj_o)
        p = params.guidance * (1 - epoch / max(1, epochs - 1)) if epochs > 1 else 0.0
        keep_cont = torch.rand(c_e.shape, generator=generator) < p        # guidance mask
        b_e = torch.where(keep_cont, c_e, _SignSTE.apply(c_e))
        pred = mu + enc.scale * (c_o[o] * b_e[e]).sum(-1) / bits
        loss = (pred - x).pow(2).mean()
        if params.link_weight > 0:
            neg = torch.randint(data.num_entities, e.shape, generator=generator)
            pos_s = (c_o[o] * b_e[e]).sum(-1)
            neg_s = (c_o[o] * b_e[neg]).sum(-1)
            link = nn.functional.softplus(-pos_s).mean() + nn.functional.softplus(neg_s).mean()
            loss = loss + params.link_weight * link
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        c_e, _ = enc(adj_e, adj_o)
        return torch.where(c_e >= 0, 1, -1).to(torch.long), losses


class HashGNNEmbedding(EmbeddingMethod):
    Params = HashGNNParams

    def __init__(self, num_entities, dim, compression, params: HashGNNParams, generator):
        super().__init__(num_entities, dim, compression, params, generator)
        self.bits = max(0, int(math.floor(math.log2(self.budget_rows()))))          # L
        self.n_rows = 2 ** self.bits                                                 # 2^L <= M_q
        self.generator = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        self.weight = nn.Parameter(init_vectors(self.n_rows, dim, generator, params.init_scale))       # (2^L, R)
        self.register_buffer("rows", torch.arange(num_entities) % self.n_rows)      # (M,) code -> row
        self.pretrain_loss: list[float] = []

    def fit_data(self, data: TrainingData) -> None:
        """DataAware hook: pretrain the hash function on the training graph, then fix the codes."""
        if data.num_entities != self.num_entities:
            raise ValueError(f"training data has {data.num_entities} entities, the method {self.num_entities}")
        if self.bits == 0:                                   # M_q = 1: a single row, nothing to hash
            self.rows.zero_()
            return
        codes, self.pretrain_loss = pretrain_codes(data, self.bits, self.params, self.generator)
        weights = 2 ** torch.arange(self.bits)
        self.rows.copy_(((codes > 0).to(torch.long) * weights).sum(-1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[self.rows[ids]]

    def embedding_rows(self) -> int:
        return self.n_rows

    def index_entries(self) -> int:
        return self.num_entities

    def used_rows(self) -> int:
        return int(torch.unique(self.rows).numel())

    def shared_rows(self):
        return (self.weight, self.rows) if self.params.grad_avg else None

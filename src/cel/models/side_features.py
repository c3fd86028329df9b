"""Sparse item side features (genre on MovieLens; category and brand on Amazon) as model fields.

Appendix A.1: "DIN and DeepFM utilize the sparse features (including the category and the brand
of the product) from the available meta data". These tables belong to the interaction model,
like its MLP weights: they are not entity embeddings, so no embedding method compresses them
and neither the norm regulariser of Eq. 8 nor the model constraint applies to them.

A batch carries each feature as ``features[name] = (ids (B, F), mask (B, F))`` (see
:class:`cel.train.feeds.BatchContext`: ids are 1-based, 0 is padding). A multi-valued field
(an item with several genres) is the mean of its values' vectors over the mask; an item with no
value, or a batch without the feature at all (the CEL schedule's generic reassignment and split
statistics call the model on embeddings alone), gives the zero vector.

Vocabulary size. The tables are sized at construction, ``vocab`` rows per field (an int for
every field, or a dict name -> rows); an id at or beyond that raises ``ValueError`` naming the
field (never a silent hash). The default :data:`DEFAULT_VOCAB` = 1024 covers MovieLens' genres
(19 values); the run driver sizes larger vocabularies (Amazon brands) from the item feature
tables with :meth:`SideFeatures.vocab_of`. Sizing from the batch instead cannot work: a batch
shows only the ids of its own items. Rows that no item uses never get a gradient and stay at
their initial value, so the spare capacity changes no prediction; shapes are fixed, hence the
module is deterministic and checkpointable like any other. Only the embedding dimension R is
inferred (at the first forward pass, ``LazyModuleMixin``: the parameters are materialised in
place, so an optimiser built before that updates them).

Initialisation as every embedding in the project (Appendix D.1): Gaussian entries divided by
the table's maximum absolute value; first-order weights start at zero.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from cel.embeddings.base import init_vectors
from cel.models.layers import masked_mean

#: rows per side-feature table unless configured (ids are 1-based: up to 1023 distinct values)
DEFAULT_VOCAB = 1024

Features = dict[str, tuple[torch.Tensor, torch.Tensor]]


class SideFeatures(LazyModuleMixin, nn.Module):
    """``forward(features, like (B, R)) -> (fields (B, n, R), first_order (B,))`` for the n fields
    in ``names`` (``first_order`` is all zeros unless built with ``first_order=True``)."""

    cls_to_become = None

    def __init__(self, names: tuple[str, ...], vocab: int | dict[str, int] = DEFAULT_VOCAB,
                 first_order: bool = False):
        super().__init__()
        self.names = tuple(names)
        self.vocab = {n: int(vocab[n] if isinstance(vocab, dict) else vocab) for n in self.names}
        for n, v in self.vocab.items():
            if v < 1:
                raise ValueError(f"side feature {n!r}: vocabulary size must be >= 1, got {v}")
        self.tables = nn.ParameterDict({n: UninitializedParameter() for n in self.names})     # (V, R) each
        self.linear = (nn.ParameterDict({n: nn.Parameter(torch.zeros(self.vocab[n])) for n in self.names})
                       if first_order else None)                                             # (V,) each

    @staticmethod
    def vocab_of(features: Features) -> dict[str, int]:
        """Rows each table needs for the given (M, F) item feature tables (max id + 1)."""
        return {n: int(ids.max()) + 1 if ids.numel() else 1 for n, (ids, _) in features.items()}

    def initialize_parameters(self, features: Features | None, like: torch.Tensor) -> None:
        """Materialise the (V, R) tables with R = ``like.shape[-1]`` (Appendix D.1 initialisation)."""
        with torch.no_grad():
            for n, table in self.tables.items():
                if isinstance(table, UninitializedParameter):
                    table.materialize((self.vocab[n], like.shape[-1]), dtype=like.dtype)
                    table.copy_(init_vectors(self.vocab[n], like.shape[-1], torch.default_generator))

    def forward(self, features: Features | None, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, R = like.shape[0], like.shape[-1]
        fields, first = [], like.new_zeros(B)
        for n in self.names:
            if features is None or n not in features:
                fields.append(like.new_zeros(B, R))
                continue
            ids, mask = features[n]
            if ids.numel() and int(ids.max()) >= self.vocab[n]:
                raise ValueError(f"side feature {n!r}: id {int(ids.max())} is beyond the model's vocabulary of "
                                 f"{self.vocab[n]} rows; build the model with vocab={{{n!r}: ...}} "
                                 "(SideFeatures.vocab_of of the item feature table)")
            fields.append(masked_mean(self.tables[n][ids], mask))                      # (B, F, R) -> (B, R)
            if self.linear is not None:
                first = first + masked_mean(self.linear[n][ids].unsqueeze(-1), mask).squeeze(-1)
        out = torch.stack(fields, 1) if fields else like.new_zeros(B, 0, R)             # (B, n, R)
        return out, first

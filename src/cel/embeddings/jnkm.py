"""JNKM: joint nonnegative matrix factorisation and K-means baseline.

Yang, Fu, Sidiropoulos. "Learning From Hidden Traits: Joint Factor Analysis and Latent
Clustering", IEEE Transactions on Signal Processing 65(1), 2017, 256-269 (the CEL paper's [25]).

Mechanism: the factorisation X ≈ A Bᵀ is fitted jointly with a K-means model of the item
factors, λ/2 · ||B - S C||² with hard assignment S and centroids C, by alternating updates:
gradient steps on the factors, nearest-centroid assignment, centroids = member means. The CEL
paper's adaptation (Section 4, D.1): K = M_q clusters, and at test time items share their
cluster's centroid (at 100% the original, unshared). Everything but the centroid update lives in
:mod:`cel.embeddings.cluster_regularized`, shared with eTree.
"""
from __future__ import annotations

from cel.embeddings.cluster_regularized import ClusterRegularizedEmbedding, ClusterRegularizedParams


class JNKMEmbedding(ClusterRegularizedEmbedding):
    Params = ClusterRegularizedParams

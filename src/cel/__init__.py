"""CEL: Clustered Embedding Learning for recommender systems (Chen, Huzhang et al., WWW 2023).

Library entry points: ``cel.embeddings.EMBEDDINGS`` (embedding methods, e.g. ``CELEmbedding``),
``cel.models.MODELS`` (interaction models), ``cel.train`` (the full-batch trainer and the CEL
cluster schedule). The ``cel`` command line drives the reproduction workflow.
"""
__version__ = "0.1.0"

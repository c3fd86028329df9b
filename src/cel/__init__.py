"""CEL: Clustered Embedding Learning for recommender systems (Chen, Huzhang et al., WWW 2023).

The public API (everything else is internal and may change):

* :class:`CELEmbedding` — a drop-in replacement of ``torch.nn.Embedding``: B = S_q · B_q (Eq. 2),
  ``forward(ids (...)) -> (..., R)``; ``CELEmbedding(num_items, 64, compression=5)`` (percent)
  or ``num_clusters=``.
* :class:`CELLiteEmbedding` — CEL-Lite (Section 3.4) for online learning, ids admitted on arrival.
* :class:`ClusterSchedule` — learns the clusters in your own loop: ``schedule.step(model, batch)``
  (splits Eq. 5-6, reassignment Eq. 4, gradient averaging Eq. 7).

The project's own training loop is :class:`cel.train.Trainer` (with the callback
``cel.train.ClusterSchedule``); the ``cel`` command line drives the reproduction workflow
(``pip install "cel[workflow]"``). Guide: ``docs/library.md``.
"""
__version__ = "0.1.0"

__all__ = ["CELEmbedding", "CELLiteEmbedding", "ClusterSchedule", "__version__"]

# Loaded on first use (PEP 562): `import cel.tables` or `cel table` need no torch, and the
# workflow's table, summary and mirror jobs each saved the ~1.2 s torch import.
_LAZY = {"CELEmbedding": "cel.api", "CELLiteEmbedding": "cel.api", "ClusterSchedule": "cel.schedule_api"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cel' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))

"""The table registry: one module per paper table, each defining ``SPEC`` (a
:class:`~cel.tablespec.TableSpec`). A new table is a new module listed in ``_MODULES``."""
from __future__ import annotations

from importlib import import_module

from cel.tablespec import TableSpec
from cel.tablespecs.table7 import TABLE7_METHODS  # noqa: F401

_MODULES = ("table7", "table3", "table2", "table3_detail", "table4", "table5", "table6", "table8", "table9", "table10", "table11",
            "table12", "table13", "table14", "tuning", "personalize", "lite_stream")

TABLES: dict[str, TableSpec] = {}
for _name in _MODULES:
    _spec = import_module(f"cel.tablespecs.{_name}").SPEC
    assert _spec.name == _name, f"cel.tablespecs.{_name} defines table {_spec.name!r}"
    TABLES[_name] = _spec

"""What a table is, as data: :class:`Axis`, :class:`PaperRef`, :class:`RowFlags`, :class:`Claim`, :class:`TableSpec`.

The declarations live in :mod:`cel.tablespecs` (one module per paper table); the rendering and the
statistics in :mod:`cel.tables`. See :mod:`cel.tables` for the meaning of every field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

import numpy as np

from cel.paper import paper_results
from cel.report import canon

METHOD_LABELS = {
    "full": "Vanilla full embedding", "etree": "eTree", "jnkm": "JNKM", "modulo": "Modulo", "bh": "BH",
    "ae": "AE", "hashgnn": "HashGNN", "prehash_k4": "PreHash ($K=4$)", "prehash_kmq": "PreHash ($K=M_q$)",
    "cel": "CEL", "cel_lite": "CEL-Lite", "cerp": "CERP", "qr": "QR",
}
DATASET_LABELS = {"ml-100k": "MovieLens-100k", "ml-1m": "MovieLens-1m", "ml-10m": "MovieLens-10m",
                  "video_games": "Video Games", "electronics": "Electronics"}
MODEL_LABELS = {"nmf": "NMF", "din": "DIN", "deepfm": "DeepFM"}
METRIC_LABELS = {"test_mse": "Test MSE", "train_mse": "Training MSE", "val_mse": "Validation MSE",
                 "test_auc": "AUC", "test_logloss": "Logloss", "test_rmse": "Test RMSE"}

#: axes every summary has (older summaries without task/seed get the defaults)
CORE_AXES = ("task", "dataset", "variant", "model", "method", "compression", "fold", "seed", "metric")
CORE_DEFAULTS = {"task": "regression", "seed": "0"}
PARAM_PREFIXES = ("param.", "train.")
#: defaults where an :class:`Axis` declares no labels / format / title
DEFAULT_LABELS = {"method": METHOD_LABELS, "dataset": DATASET_LABELS, "model": MODEL_LABELS,
                  "metric": METRIC_LABELS}
DEFAULT_FORMATS = {"compression": "{}\\%"}
DEFAULT_TITLES = {"dataset": "Dataset", "compression": "Compression ratio", "model": "Feature interaction model",
                  "variant": "Density", "metric": "Metric", "method": "Method"}

Value = Union[str, int, float, bool]
#: the columns :func:`cel.tables.cell_stats` adds to a cell's axis values (row flags must not reuse them)
CELL_COLUMNS = ("mean", "std", "n", "runs", "paper", "paper_source", "delta", "stored_percent", "higher_is_better")


def check_axis(name: str, where: str = "axis") -> str:
    """``name`` if it is an axis, else a ValueError naming it."""
    if isinstance(name, str) and (name in CORE_AXES or
                                  any(name.startswith(p) and len(name) > len(p) for p in PARAM_PREFIXES)):
        return name
    raise ValueError(f"{where}: unknown axis {name!r} (axes: {', '.join(CORE_AXES)}, "
                     f"param.<method parameter>, train.<training setting>)")


def _canon_values(v) -> tuple[str, ...]:
    vals = v if isinstance(v, (tuple, list, set, frozenset)) else (v,)
    return tuple(canon(x) for x in vals)


@dataclass(frozen=True)
class Axis:
    """One axis of a table: a summary column, its value order and how values are shown.

    ``values``: shown first, in this order; other values with runs follow, sorted (numerically
    where they all are numbers, descending if ``reverse``). ``labels``: value -> LaTeX label;
    values without a label are shown through ``fmt``. ``title``: header text (column axes default
    to a name such as "Compression ratio"; row axes show none unless given).
    """

    name: str
    values: tuple[Value, ...] = ()
    labels: Mapping[Value, str] = field(default_factory=dict)
    title: str | None = None
    fmt: str | None = None
    reverse: bool = False

    def __post_init__(self):
        check_axis(self.name)
        object.__setattr__(self, "values", _canon_values(self.values) if self.values != () else ())
        object.__setattr__(self, "labels", {canon(k): v for k, v in dict(self.labels).items()})

    def label(self, value: str) -> str:
        if value in self.labels:
            return self.labels[value]
        default = DEFAULT_LABELS.get(self.name, {})
        if self.fmt is None and value in default:
            return default[value]
        return (self.fmt or DEFAULT_FORMATS.get(self.name, "{}")).format(value)

    def order(self, present) -> list[str]:
        """Declared values, then the others present, sorted."""
        extra = set(present) - set(self.values) - {None}
        try:
            rest = sorted(extra, key=float, reverse=self.reverse)
        except (TypeError, ValueError):
            rest = sorted(extra, key=str, reverse=self.reverse)
        return list(self.values) + rest


def _as_axis(a) -> Axis:
    return a if isinstance(a, Axis) else Axis(a)


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class PaperRef:
    """Where a cell's published value is in ``resources/paper_results.yaml``.

    ``path``: keys below ``table``; ``{axis}`` in a key is replaced by the cell's value of that
    axis (a row/column axis, or one fixed by a single-valued filter), ``{a+b}`` by the values of
    ``a`` and ``b`` joined by "+". ``keys`` translates a placeholder's value to the YAML's spelling
    (``{"model": {"nmf": "NMF"}}``); untranslated values are used as they are. ``when``: this
    reference applies only to cells whose axis values match (a value or a tuple of values).
    ``source``: the published value is for another dataset (e.g. "ML-1m" for an ML-100k analogue
    of an ML-1m table): the cell shows it labelled with that name and computes no delta.
    """

    table: str
    path: tuple[str, ...]
    keys: Mapping[str, Mapping[Value, str]] = field(default_factory=dict)
    when: Mapping[str, Value | tuple[Value, ...]] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "keys", {k: {canon(a): b for a, b in dict(m).items()}
                                          for k, m in dict(self.keys).items()})
        object.__setattr__(self, "when", {check_axis(k, f"paper {self.table} when"): _canon_values(v)
                                          for k, v in dict(self.when).items()})
        for a in self.placeholders():
            check_axis(a, f"paper {self.table} path")

    def placeholders(self) -> set[str]:
        return {a for part in self.path for m in _PLACEHOLDER.findall(part) for a in m.split("+")}

    def key_path(self, coords: Mapping[str, str]) -> tuple[str, ...] | None:
        """The YAML keys of the cell at ``coords``; None where this reference does not apply."""
        if any(coords.get(a) not in vals for a, vals in self.when.items()):
            return None

        def sub(m):
            names = m.group(1).split("+")
            if any(coords.get(a) is None for a in names):
                raise KeyError(m.group(1))
            raw = "+".join(coords[a] for a in names)
            return self.keys.get(m.group(1), {}).get(raw, raw)

        try:
            return (self.table, *(_PLACEHOLDER.sub(sub, part) for part in self.path))
        except KeyError:
            return None

    def node(self, coords: Mapping[str, str]):
        """The YAML node at the cell's key path, whatever its type (a number, a mapping...), or None."""
        keys = self.key_path(coords)
        if keys is None:
            return None
        node = paper_results()
        for k in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(k)
        return node

    def value(self, coords: Mapping[str, str]) -> float | None:
        node = self.node(coords)
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None
        return float(node)


@dataclass(frozen=True)
class RowFlags:
    """Static per-row yes/no columns read from ``resources/paper_results.yaml``, not measured:
    Table 2's LTC / LMC / SIT, the properties the paper ticks for each method.

    ``flags``: the keys read, in column order (``("ltc", "lmc", "sit")``); they also name the
    columns of the cells CSV. ``source``: a :class:`PaperRef` to the mapping that holds them for a
    row; its placeholders may name row axes and axes fixed by a filter only (``("properties",
    "{method}")``). ``labels``: flag -> LaTeX header (default: the flag in capitals). Rendered
    before the measured columns: true as ``$\\checkmark$``, false as ``$\\times$``, "--" where the
    paper has no value for the row (or no such flag).
    """

    flags: tuple[str, ...]
    source: PaperRef
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        flags = (self.flags,) if isinstance(self.flags, str) else tuple(self.flags)
        if not flags or not all(isinstance(f, str) and f for f in flags) or len(set(flags)) != len(flags):
            raise ValueError(f"row flags: need distinct non-empty names, got {self.flags!r}")
        if not isinstance(self.source, PaperRef):
            raise ValueError(f"row flags: source must be a PaperRef, got {self.source!r}")
        labels = dict(self.labels)
        unknown = set(labels) - set(flags)
        if unknown:
            raise ValueError(f"row flags: labels for unknown flags {sorted(unknown)} (flags: {', '.join(flags)})")
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "labels", labels)

    def label(self, flag: str) -> str:
        return self.labels.get(flag, flag.upper())

    def values(self, coords: Mapping[str, str]) -> dict[str, bool | None]:
        """flag -> True / False, or None where the paper has no value for the row at ``coords``."""
        node = self.source.node(coords)
        out = {}
        for f in self.flags:
            v = node.get(f) if isinstance(node, dict) else None
            if v is not None and not isinstance(v, bool):
                raise ValueError(f"paper_results.yaml {'/'.join(self.source.key_path(coords) or ())}: flag {f!r} "
                                 f"is {v!r}, not true / false")
            out[f] = v
        return out


@dataclass(frozen=True)
class Claim:
    """An ordering the paper claims: ``better`` beats ``worse`` (values of ``axis``, by default the
    first row axis) wherever ``at_axis`` (by default the last column axis) takes a value in ``at``
    (empty: everywhere), for every combination of the other axes. Better = the metric's direction.

    ``margin`` (None: a superiority claim, "better beats worse") makes it a non-inferiority claim,
    "better is no worse than worse by more than ``margin``" (READINGS: AUC 0.001, MSE 0.002). It is
    in the metric's own units, before the table's ``scale`` (which is applied to it as to values).

    ``worse_at`` compares against the ``worse`` cell at that value of ``at_axis`` instead of the
    same one: Table 4's "CEL-Lite at 10% is no worse than the full embedding (at 100%)".
    """

    better: Value
    worse: Value
    at: tuple[Value, ...] = ()
    axis: str = ""
    at_axis: str = ""
    margin: float | None = None
    worse_at: Value | None = None

    def __post_init__(self):
        object.__setattr__(self, "better", canon(self.better))
        object.__setattr__(self, "worse", canon(self.worse))
        object.__setattr__(self, "at", _canon_values(self.at) if self.at != () else ())
        if self.worse_at is not None:
            object.__setattr__(self, "worse_at", canon(self.worse_at))
        for a in (self.axis, self.at_axis):
            if a:
                check_axis(a, "claim")
        if self.margin is not None:
            m = float(self.margin)
            if not np.isfinite(m) or m < 0:
                raise ValueError(f"claim {self.better} vs {self.worse}: margin must be a finite number >= 0, "
                                 f"got {self.margin!r}")
            object.__setattr__(self, "margin", m)


@dataclass(frozen=True)
class TableSpec:
    """A table, as data. See the module docstring; ``TABLES["table7"]`` is an example."""

    name: str
    caption: str
    rows: Axis | tuple[Axis, ...]            # stored as a tuple (one label column per axis)
    cols: Axis | tuple[Axis, ...]            # outer level first
    metric: str = ""                         # the metric shown, unless "metric" is a row/column axis
    #: axis -> value or tuple of values; "a+b" -> "x+y" values select combinations (JNKM at 100%, CEL at 2%)
    filters: Mapping[str, Value | tuple[Value, ...]] = field(default_factory=dict)
    #: averaged over the leading axes first (seeds within a fold), mean / std / n over the last
    aggregate: tuple[str, ...] = ("seed", "fold")
    paper: PaperRef | None = None
    #: tried in order where ``paper`` has no value (e.g. a cell published in another table)
    fallback: tuple[PaperRef, ...] = ()
    claims: tuple[Claim, ...] = ()
    #: metric holding the size really stored at test time, in % of a full table: shown as
    #: "stores X%" where it differs from the nominal compression by more than ``size_tolerance``
    size_metric: str = ""
    size_tolerance: float = 0.02
    #: metric -> factor applied to our values (e.g. {"test_auc": 100}: the paper gives AUC in %)
    scale: Mapping[str, float] = field(default_factory=dict)
    digits: int = 4
    #: family-wise level of the claims' tests (Holm over all claim rows of the table)
    alpha: float = 0.05
    #: ids in resources/deviations.yaml listed under the table (each with its evidence)
    deviations: tuple[str, ...] = ()
    #: static yes/no columns per row from paper_results.yaml, before the measured ones (Table 2's LTC/LMC/SIT)
    row_flags: RowFlags | None = None
    #: builder of ``<stem>_sizes.csv`` beside the table from the runs' summary, for a table whose
    #: claims compare cells of different sizes (Table 4: the size ratio full / CEL-Lite); None: none
    sizes: Callable[[Any], Any] | None = None

    def __post_init__(self):
        rows = tuple(_as_axis(a) for a in (self.rows if isinstance(self.rows, (tuple, list)) else (self.rows,)))
        cols = tuple(_as_axis(a) for a in (self.cols if isinstance(self.cols, (tuple, list)) else (self.cols,)))
        if not rows or not cols:
            raise ValueError(f"table {self.name}: needs at least one row axis and one column axis")
        names = [a.name for a in rows + cols]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: an axis appears twice: {names}")
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        filters = {}
        for k, v in dict(self.filters).items():
            for part in str(k).split("+"):
                check_axis(part, f"table {self.name} filter")
            filters[k] = _canon_values(v)
        object.__setattr__(self, "filters", filters)
        for a in self.aggregate:
            check_axis(a, f"table {self.name} aggregate")
        if "metric" in names:
            if self.metric:
                raise ValueError(f"table {self.name}: metric {self.metric!r} given and 'metric' is an axis")
            if not self.axis("metric").values:
                raise ValueError(f"table {self.name}: the 'metric' axis must list its metrics (values=...)")
        elif not self.metric and "metric" not in filters:
            raise ValueError(f"table {self.name}: no metric (give metric= or a 'metric' axis)")
        claims = tuple(c if isinstance(c, Claim) else Claim(*c) for c in self.claims)
        for c in claims:
            for a in (c.axis, c.at_axis):
                if a and a not in names:
                    raise ValueError(f"table {self.name}: claim axis {a!r} is not a row or column axis")
        object.__setattr__(self, "claims", claims)
        for ref in (self.paper, *self.fallback):
            if ref is None:
                continue
            missing = ref.placeholders() - set(names) - set(self.fixed())
            if missing:
                raise ValueError(f"table {self.name}: paper path uses {sorted(missing)}, neither an axis "
                                 f"nor fixed by a filter")
        if self.row_flags is not None:
            if not isinstance(self.row_flags, RowFlags):
                raise ValueError(f"table {self.name}: row_flags must be a RowFlags, got {self.row_flags!r}")
            per_row = {a.name for a in rows} | set(self.fixed())
            missing = self.row_flags.source.placeholders() - per_row
            if missing:
                raise ValueError(f"table {self.name}: row flags' path uses {sorted(missing)}, neither a row axis "
                                 f"nor fixed by a filter (flags are per row)")
            clash = set(self.row_flags.flags) & (set(names) | set(CELL_COLUMNS) | {"metric"})
            if clash:
                raise ValueError(f"table {self.name}: row flags {sorted(clash)} clash with the cells' columns")
        object.__setattr__(self, "scale", dict(self.scale))
        from cel.paper import deviations
        unknown = [d for d in self.deviations if d not in deviations()]
        if unknown:
            raise ValueError(f"table {self.name}: unknown deviation ids {unknown} (resources/deviations.yaml)")
        if not 0 < float(self.alpha) < 1:
            raise ValueError(f"table {self.name}: alpha must be in (0, 1), got {self.alpha!r}")

    # -- helpers -------------------------------------------------------------------------------
    @property
    def axes(self) -> tuple[Axis, ...]:
        return self.rows + self.cols

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise KeyError(f"table {self.name}: {name!r} is not a row or column axis")

    def fixed(self) -> dict[str, str]:
        """Axis values every cell shares: single-valued filters and a fixed metric."""
        out = {}
        for k, v in self.filters.items():
            if len(v) == 1:
                parts, vals = k.split("+"), str(v[0]).split("+")
                out.update(zip(parts, vals) if len(parts) == len(vals) else ())
        if self.metric:
            out["metric"] = self.metric
        return out

    def lookup_flags(self, coords: Mapping[str, Value]) -> dict[str, bool | None]:
        """The row flags of the row at ``coords`` (row axis -> value): flag -> True / False / None
        (the paper has none); {} for a table without row flags."""
        if self.row_flags is None:
            return {}
        return self.row_flags.values({**self.fixed(), **{k: canon(v) for k, v in coords.items()}})

    def lookup_paper(self, coords: Mapping[str, Value]) -> float | None:
        """The published value of the cell at ``coords`` (axis -> value), or None."""
        return self.lookup_paper_ref(coords)[0]

    def lookup_paper_ref(self, coords: Mapping[str, Value]) -> tuple[float | None, str]:
        """(published value or None, the reference's ``source``: "" when it is for the same dataset)."""
        c = {**self.fixed(), **{k: canon(v) for k, v in coords.items()}}
        for ref in (self.paper, *self.fallback):
            if ref is not None:
                v = ref.value(c)
                if v is not None:
                    return v, ref.source
        return None, ""



"""Your own interactions: the ``csv`` dataset kind (a delimited text file or a parquet file, plus
a column mapping in the profile), prepared under the same guarantees as the built-in datasets.

A ``datasets`` entry of kind ``csv``::

    mydata:
      kind: csv
      path: data/interactions.csv        # .parquet / .pq are read as parquet
      columns: {user: user_id, item: item_id, rating: stars, timestamp: ts}   # or label: clicked
      sep: ","                           # any string; default ","
      header: true                       # false: columns are 0-based positions
      duplicates: keep_last              # or fail
      items_file: {path: data/items.csv, columns: {item: item_id, title: name, genres: tags},
                   genre_sep: "|"}

Rules (each tested in ``tests/test_csv_dataset.py``):

* Ids may be any strings. They are numbered 0..N-1 in *natural order* (runs of digits compare as
  numbers: ``u2 < u10``; all-integer ids keep their numeric order), so a file whose ids are
  numbers, or numbers with a fixed prefix, gives the same numbering as the built-in parsers.
  The mapping is written next to the prepared tables (``user_ids.parquet``, ``item_ids.parquet``).
* ``rating`` is any finite number; ``label`` must be 0 or 1 and is stored in the ``rating``
  column (a ``conversion`` task on it needs ``threshold: 1``). ``timestamp`` is a number (epoch
  seconds) or an ISO 8601 date; without one, the row's position in the file is its time.
* Duplicated (user, item) pairs: ``keep_last`` keeps the last by timestamp (the later line on
  ties) and reports how many rows were dropped; ``fail`` stops, naming both lines.
* A malformed line is an error naming the file and the line; a missing column names the column
  and lists those found; an empty file, or one with a single user or item, is an error.
  Encoding ``utf-8`` by default; a byte-order mark and Windows line endings are accepted.
  Quoted fields may hold the separator, not a line break.
* The sha256 of every file read is recorded in the prepared ``meta.json`` (and from there tagged
  on every run, ``source_sha256``).
"""
from __future__ import annotations

import csv
import io
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from cel.data.dedupe import keep_last
from cel.errors import ConfigError, DataError
from cel.io import sha256_file

ROLES = ("user", "item", "rating", "label", "timestamp")
ITEM_ROLES = ("item", "title", "genres", "brand")
DUPLICATE_POLICIES = ("keep_last", "fail")
PARQUET_SUFFIXES = (".parquet", ".pq")
SAMPLE_LINES = 10_000          # what `cel validate` reads


# ------------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class FileSpec:
    """One delimited (or parquet) file and the roles of its columns."""

    path: Path
    columns: dict                  # role -> column name (str) or 0-based position (int)
    sep: str = ","
    header: bool = True
    encoding: str = "utf-8"

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() in PARQUET_SUFFIXES


@dataclass(frozen=True)
class CsvSpec:
    name: str
    ratings: FileSpec
    duplicates: str = "keep_last"
    items: FileSpec | None = None
    genre_sep: str = "|"
    target: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "target", "label" if "label" in self.ratings.columns else "rating")

    @classmethod
    def from_config(cls, name: str, ds: dict) -> "CsvSpec":
        where = f"datasets.{name}"
        from cel.data.sources import SOURCES

        if name in SOURCES:
            raise ConfigError(f"config invalid value at '{where}': a csv dataset may not be named like the "
                              f"built-in dataset '{name}' (tables would set the paper's values beside it)")
        ratings = _file_spec(ds, where, ROLES, required=("user", "item"))
        cols = ratings.columns
        if ("rating" in cols) == ("label" in cols):
            raise ConfigError(f"config invalid value at '{where}.columns': map exactly one of 'rating' or "
                              f"'label' (found: {', '.join(cols)})")
        policy = ds.get("duplicates", "keep_last")
        if policy not in DUPLICATE_POLICIES:
            raise ConfigError(f"config invalid value at '{where}.duplicates': {policy!r} "
                              f"(one of {', '.join(DUPLICATE_POLICIES)})")
        items, gsep = None, "|"
        if ds.get("items_file"):
            items = _file_spec(ds["items_file"], f"{where}.items_file", ITEM_ROLES, required=("item",))
            gsep = ds["items_file"].get("genre_sep", "|")
        return cls(name, ratings, policy, items, gsep)


def _file_spec(entry: dict, where: str, roles: tuple[str, ...], required: tuple[str, ...]) -> FileSpec:
    if not entry.get("path"):
        raise ConfigError(f"config invalid value at '{where}.path': a csv dataset needs the file's path")
    cols = dict(entry.get("columns") or {})
    for role in cols:
        if role not in roles:
            raise ConfigError(f"config unknown key at '{where}.columns.{role}' (roles: {', '.join(roles)})")
    for role in required:
        if role not in cols:
            raise ConfigError(f"config invalid value at '{where}.columns': no column mapped to '{role}'")
    header = bool(entry.get("header", True))
    path = Path(entry["path"])
    for role, col in cols.items():
        if isinstance(col, bool) or not isinstance(col, (str, int)):
            raise ConfigError(f"config invalid value at '{where}.columns.{role}': a column name or position")
        if not header and not isinstance(col, int) and path.suffix.lower() not in PARQUET_SUFFIXES:
            raise ConfigError(f"config invalid value at '{where}.columns.{role}': without a header, "
                              f"columns are 0-based positions (got {col!r})")
    sep = entry.get("sep", ",")
    if not sep or "\n" in sep or "\r" in sep or '"' in sep:
        raise ConfigError(f"config invalid value at '{where}.sep': {sep!r}")
    return FileSpec(path, cols, sep, header, entry.get("encoding", "utf-8"))


# ------------------------------------------------------------------------------- reading
def _decode(spec: FileSpec, data: bytes) -> str:
    enc = "utf-8-sig" if spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else spec.encoding
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{spec.path}, line {line}: not valid {spec.encoding} ({exc.reason}); "
                        f"set the dataset's `encoding`") from None


def _missing(spec: FileSpec, found: list, header: bool) -> None:
    for role, col in spec.columns.items():
        ok = col in found if (header and isinstance(col, str)) else (isinstance(col, int) and 0 <= col < len(found))
        if not ok:
            what = f"column {col!r}" if isinstance(col, str) else f"column position {col}"
            shown = ", ".join(map(repr, found)) if header else f"{len(found)} columns"
            raise DataError(f"{spec.path}: {what} (mapped to '{role}') not found; columns found: {shown}")


def _select(spec: FileSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The mapped columns of a frame of strings, named by role."""
    return pd.DataFrame({role: frame[col] if isinstance(col, str) else frame.iloc[:, col]
                         for role, col in spec.columns.items()})


def _split_line(line: str, sep: str) -> list[str]:
    if len(sep) == 1:
        return next(csv.reader([line], delimiter=sep, strict=True))
    return line.split(sep)


def _text_lines(text: str):
    """(line number, line) of the non-blank lines; ``\\n`` or ``\\r\\n`` end a line."""
    for no, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield no, line


def _read_validating(spec: FileSpec, text: str, limit: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Line by line: names the first malformed line. Returns (role frame of strings, line numbers)."""
    lines = _text_lines(text)
    names: list | None = None
    if spec.header:
        first = next(lines, None)
        if first is None:
            raise DataError(f"{spec.path}: empty file (no header, no data rows)")
        names = [c.strip() for c in _split_line(first[1], spec.sep)]
        _missing(spec, names, True)
    rows, nos, width = [], [], len(names) if names else None
    pos = {role: (names.index(col) if isinstance(col, str) else col) for role, col in spec.columns.items()} \
        if names else dict(spec.columns)
    for no, line in lines:
        try:
            fields = _split_line(line, spec.sep)
        except csv.Error as exc:
            raise DataError(f"{spec.path}, line {no}: malformed line {line[:200]!r}: {exc}") from None
        if width is None:
            width = len(fields)
            _missing(spec, fields, False)
        if len(fields) != width:
            raise DataError(f"{spec.path}, line {no}: malformed line {line[:200]!r}: expected {width} fields "
                            f"separated by {spec.sep!r}, found {len(fields)}")
        values = {role: fields[p] for role, p in pos.items()}
        for role, v in values.items():
            problem = _check_value(role, v)
            if problem:
                raise DataError(f"{spec.path}, line {no}: malformed line {line[:200]!r}: {role} {problem}")
        rows.append(values), nos.append(no)
        if limit is not None and len(rows) >= limit:
            break
    frame = pd.DataFrame(rows, columns=list(spec.columns), dtype=object)
    return frame.astype(str) if len(frame) else frame, np.asarray(nos, dtype=np.int64)


def _check_value(role: str, v: str) -> str | None:
    """What is wrong with one field of a role (None: nothing)."""
    s = v.strip()
    if role in ("user", "item"):
        return "id is empty" if not s else None
    if role in ("rating", "label"):
        try:
            x = float(s)
        except ValueError:
            return f"{s!r} is not a number"
        if not math.isfinite(x):
            return f"{s!r} is not finite"
        if role == "label" and x not in (0.0, 1.0):
            return f"{s!r} is not 0 or 1"
        return None
    if role == "timestamp":
        try:
            float(s)
            return None
        except ValueError:
            pass
        try:
            datetime.fromisoformat(s.replace("Z", "+00:00"))
            return None
        except ValueError:
            return f"{s!r} is neither a number nor an ISO 8601 date"
    return None


def _read_fast(spec: FileSpec, text: str) -> pd.DataFrame | None:
    """pandas' C parser; None if anything is off (the validating reader then names the line)."""
    sep = spec.sep
    if len(sep) > 1:
        if "\x1f" in text:
            return None
        text, sep = text.replace(spec.sep, "\x1f"), "\x1f"
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if spec.header else None, dtype=str,
                            na_filter=False, engine="c", skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError):
        return None
    if spec.header:
        frame.columns = [str(c).strip() for c in frame.columns]
        _missing(spec, list(frame.columns), True)
    elif len(frame.columns):
        _missing(spec, list(frame.columns), False)
    if frame.isna().any().any():        # a short line: pandas fills the missing fields
        return None
    return _select(spec, frame)


def _to_time(s: pd.Series) -> pd.Series | None:
    num = pd.to_numeric(s.str.strip(), errors="coerce")
    if not num.isna().any():
        return num.astype(np.float64).round().astype(np.int64)
    dt = pd.to_datetime(s.str.strip(), errors="coerce", utc=True, format="ISO8601")
    if dt.isna().any():
        return None
    return ((dt - pd.Timestamp(0, tz=timezone.utc)) // pd.Timedelta(seconds=1)).astype(np.int64)


def _typed(spec: FileSpec, roles: pd.DataFrame) -> pd.DataFrame | None:
    """Numbers from the strings of an interactions file; None if a value does not convert."""
    out = pd.DataFrame({"user": roles["user"].astype(str).str.strip(), "item": roles["item"].astype(str).str.strip()})
    if (out["user"] == "").any() or (out["item"] == "").any():
        return None
    target = "label" if "label" in roles else "rating"
    y = pd.to_numeric(roles[target].astype(str).str.strip(), errors="coerce").astype(np.float64)
    if y.isna().any() or not np.isfinite(y.to_numpy()).all():
        return None
    if target == "label" and not y.isin([0.0, 1.0]).all():
        return None
    out["rating"] = y
    if "timestamp" in roles:
        t = _to_time(roles["timestamp"].astype(str))
        if t is None:
            return None
        out["timestamp"] = t.to_numpy()
    return out


def read_interactions(spec: FileSpec, data: bytes | None = None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(user, item as strings; rating; timestamp if mapped) and the file line of every row (None
    when the fast reader succeeded: line numbers are then recovered only for an error)."""
    if spec.is_parquet:
        return _read_parquet(spec), None
    text = _decode(spec, spec.path.read_bytes() if data is None else data)
    roles = _read_fast(spec, text)
    typed = _typed(spec, roles) if roles is not None else None
    if typed is not None:
        return typed, None
    roles, lines = _read_validating(spec, text)
    typed = _typed(spec, roles) if len(roles) else pd.DataFrame(columns=["user", "item", "rating"])
    if typed is None:   # cannot happen: the validating reader checked every field
        raise DataError(f"{spec.path}: a value does not convert, but no line was found at fault")
    return typed, lines


def _read_parquet(spec: FileSpec) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(spec.path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds
        raise DataError(f"{spec.path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    _missing(spec, [str(c) for c in frame.columns], True)
    frame.columns = [str(c) for c in frame.columns]
    roles = pd.DataFrame({role: frame[col] for role, col in spec.columns.items()})
    for role in roles:
        bad = roles[role].isna().to_numpy()
        if bad.any():
            raise DataError(f"{spec.path}, row {int(np.argmax(bad)) + 1}: {role} ({spec.columns[role]!r}) is missing")
    strs = roles.astype(str)
    typed = _typed(spec, strs)
    if typed is None:
        for i in range(len(strs)):
            for role in strs:
                problem = _check_value(role, strs[role].iat[i])
                if problem:
                    raise DataError(f"{spec.path}, row {i + 1}: {role} {problem}")
        raise DataError(f"{spec.path}: a value does not convert")
    return typed


def _line_numbers(spec: FileSpec) -> np.ndarray | None:
    if spec.is_parquet:
        return None
    return _read_validating(spec, _decode(spec, spec.path.read_bytes()))[1]


def _where(spec: FileSpec, lines: np.ndarray | None, rows) -> str:
    if lines is None:
        lines = _line_numbers(spec)
    unit = "row" if lines is None else "line"
    return ", ".join(f"{unit} {int(lines[r]) if lines is not None else r + 1}" for r in rows)


# ------------------------------------------------------------------------------- ids
def _natural_key(s: str):
    parts = re.split(r"(\d+)", s)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)) + (s,)


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Unique ids in natural order (digit runs compare as numbers; all-integer ids numerically)."""
    uniq = pd.unique(pd.Series(ids, dtype=object))
    as_int = pd.to_numeric(pd.Series(uniq), errors="coerce")
    if len(uniq) and not as_int.isna().any() and (as_int == as_int.round()).all() \
            and all(re.fullmatch(r"-?\d+", str(u)) for u in uniq):
        order = np.lexsort((np.asarray(uniq, dtype=str), as_int.to_numpy()))
        return np.asarray(uniq, dtype=object)[order]
    return np.asarray(sorted(uniq, key=_natural_key), dtype=object)


def _codes(values: pd.Series, order: np.ndarray) -> np.ndarray:
    return pd.Index(order).get_indexer(pd.Series(values, dtype=object)).astype(np.int64)   # -1: not in order


# ------------------------------------------------------------------------------- load
def _dedupe(spec: CsvSpec, frame: pd.DataFrame, lines: np.ndarray | None) -> tuple[pd.DataFrame, dict]:
    key = frame["user_code"].to_numpy() * (int(frame["item_code"].max()) + 1) + frame["item_code"].to_numpy()
    dup = pd.Series(key).duplicated(keep=False).to_numpy()
    n_dup_rows = int(dup.sum())
    if not n_dup_rows:
        return frame, {"policy": spec.duplicates, "pairs": 0, "rows_dropped": 0}
    pairs = int(pd.Series(key[dup]).nunique())
    if spec.duplicates == "fail":
        first = np.flatnonzero(key == key[np.argmax(dup)])
        u, i = frame["user"].iat[first[0]], frame["item"].iat[first[0]]
        raise DataError(f"{spec.ratings.path}: {pairs} duplicated (user, item) pair(s) over {n_dup_rows} rows "
                        f"(duplicates: fail); the first, user {u!r} item {i!r}, at {_where(spec.ratings, lines, first)}. "
                        f"Set `duplicates: keep_last` to keep the last by timestamp")
    keep = keep_last(frame["user_code"], frame["item_code"], frame["timestamp"])   # file order of the kept rows
    info = {"policy": spec.duplicates, "pairs": pairs, "rows_dropped": len(frame) - len(keep)}
    print(f"[cel] {spec.ratings.path}: {pairs} duplicated (user, item) pair(s); {info['rows_dropped']} "
          f"earlier row(s) dropped (duplicates: keep_last, by timestamp)", file=sys.stderr)
    return frame.iloc[keep].reset_index(drop=True), info


def _items_table(spec: CsvSpec, item_order: np.ndarray) -> tuple[pd.DataFrame, dict]:
    cols = ["raw_item", "title", "genres"]
    if spec.items is None:
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "raw_item" else object) for c in cols}), {}
    fs = spec.items
    if fs.is_parquet:
        raw = pd.read_parquet(fs.path)
        _missing(fs, [str(c) for c in raw.columns], True)
        raw.columns = [str(c) for c in raw.columns]
        roles, lines = pd.DataFrame({r: raw[c] for r, c in fs.columns.items()}).fillna("").astype(str), None
    else:
        text = _decode(fs, fs.path.read_bytes())
        roles, lines = _read_fast(fs, text), None
        if roles is None or (roles["item"].str.strip() == "").any():
            roles, lines = _read_validating(fs, text)
    ids = roles["item"].astype(str).str.strip()
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        first = np.flatnonzero(ids.to_numpy() == ids.to_numpy()[np.argmax(dup)])
        raise DataError(f"{fs.path}: item {ids.iat[first[0]]!r} is listed more than once ({_where(fs, lines, first)})")
    code = pd.Series(_codes(ids, item_order))
    out = pd.DataFrame({"raw_item": code.to_numpy()})
    out["title"] = roles["title"].to_numpy() if "title" in roles else ""
    out["genres"] = (["|".join(dict.fromkeys(g.strip().replace("|", "/") for g in s.split(spec.genre_sep) if g.strip()))
                      for s in roles["genres"]] if "genres" in roles else "")     # each genre once, in file order
    if "brand" in roles:
        out["brand"] = roles["brand"].str.strip().str.replace("|", "/", regex=False).to_numpy()
    known = (code >= 0).to_numpy()
    return out[known].reset_index(drop=True), {"items_listed": len(out), "items_without_interactions": int((~known).sum())}


def load_csv(name: str, ds: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(raw interactions, raw items, provenance) of a ``csv`` dataset, as ``prepare.load_raw``
    returns them: raw ids are the natural-order codes of the file's ids, so the prepared ids
    equal them; provenance ``id_maps`` holds the two mapping tables for ``prepare`` to write."""
    spec = CsvSpec.from_config(name, ds)
    fs = spec.ratings
    if not fs.path.exists():
        raise DataError(f"{fs.path}: no such file (datasets.{name}.path; relative paths are taken from "
                        f"the directory the workflow runs in)")
    sha = {fs.path.name: sha256_file(fs.path)}
    frame, lines = read_interactions(fs)
    if not len(frame):
        raise DataError(f"{fs.path}: no data rows (empty file)")
    if "timestamp" not in frame:
        frame["timestamp"] = np.arange(len(frame), dtype=np.int64)    # file order is the time order
    users, items = natural_order(frame["user"].to_numpy()), natural_order(frame["item"].to_numpy())
    for what, uniq in (("user", users), ("item", items)):
        if len(uniq) < 2:
            raise DataError(f"{fs.path}: a single {what} ({uniq[0]!r}) in {len(frame)} rows; a recommender "
                            f"dataset needs at least 2 users and 2 items")
    frame["user_code"], frame["item_code"] = _codes(frame["user"], users), _codes(frame["item"], items)
    frame, dups = _dedupe(spec, frame, lines)
    kept_users = np.unique(frame["user_code"].to_numpy())
    kept_items = np.unique(frame["item_code"].to_numpy())
    meta_items, item_info = _items_table(spec, items)
    if spec.items is not None:
        sha[spec.items.path.name] = sha256_file(spec.items.path)
    inter = pd.DataFrame({"raw_user": frame["user_code"].to_numpy(), "raw_item": frame["item_code"].to_numpy(),
                          "rating": frame["rating"].to_numpy(dtype=np.float64),
                          "timestamp": frame["timestamp"].to_numpy(dtype=np.int64)})
    id_maps = {"user_ids": pd.DataFrame({"user": np.arange(len(kept_users)), "raw_user": users[kept_users]}),
               "item_ids": pd.DataFrame({"item": np.arange(len(kept_items)), "raw_item": items[kept_items]})}
    prov = {"source": "csv", "path": str(fs.path.resolve()), "sha256": sha,
            "columns": {str(k): v for k, v in fs.columns.items()}, "target": spec.target,
            "timestamp": fs.columns.get("timestamp", "row order"), "duplicates": dups,
            "id_order": "natural", **({"items_file": {"path": str(spec.items.path.resolve()), **item_info}}
                                      if spec.items is not None else {}),
            "id_maps": id_maps}
    return inter, meta_items, prov


def write_id_maps(prov: dict, out_dir: Path) -> None:
    """Write the id mappings that ``load_csv`` put in ``prov`` (and drop them from it)."""
    from cel.io import write_parquet

    for stem, frame in prov.pop("id_maps", {}).items():
        frame = frame.assign(**{c: frame[c].astype(str) for c in frame.columns if c.startswith("raw_")})
        write_parquet(frame, Path(out_dir) / f"{stem}.parquet")


# ------------------------------------------------------------------------------- validate
def describe(name: str, ds: dict, sample: int = SAMPLE_LINES) -> list[str]:
    """What ``cel validate --dataset`` prints: the mapping checked against the first lines of
    the file, the row count estimate, users, items, target range and time span. Runs nothing."""
    spec = CsvSpec.from_config(name, ds)
    fs = spec.ratings
    if not fs.path.exists():
        raise DataError(f"{fs.path}: no such file (datasets.{name}.path)")
    size = fs.path.stat().st_size
    out = [f"{name}: kind csv, {fs.path} ({size:,} bytes), target {spec.target}, duplicates {spec.duplicates}"]
    if fs.is_parquet:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(fs.path)
        total, exact = pf.metadata.num_rows, True
        if total <= sample:
            frame = _read_parquet(fs)
        else:
            _missing(fs, pf.schema_arrow.names, True)
            batch = next(pf.iter_batches(batch_size=sample, columns=list(dict.fromkeys(fs.columns.values()))))
            frame = _typed(fs, pd.DataFrame({r: batch.column(c).to_pandas() for r, c in fs.columns.items()}).astype(str))
            if frame is None:
                raise DataError(f"{fs.path}: a value of the first {sample:,} rows does not convert")
        if not len(frame):
            raise DataError(f"{fs.path}: no data rows (empty file)")
        where = f"first {len(frame):,} rows" if total > len(frame) else "whole file"
    else:
        with open(fs.path, "rb") as fh:
            head = fh.read(1 << 22)
            whole = len(head) == size
        if not whole:
            head = head[: head.rfind(b"\n") + 1]
        roles, lines = _read_validating(fs, _decode(fs, head), limit=sample)
        if not len(roles):
            raise DataError(f"{fs.path}: no data rows (empty file)")
        frame = _typed(fs, roles)
        seen = len(frame)
        exact = whole and seen < sample
        consumed = len(head)
        if not exact and seen >= sample:          # bytes up to the end of the last line read
            consumed = 0
            for _ in range(int(lines[-1])):
                consumed = head.find(b"\n", consumed) + 1
        total = seen if exact else int(round(seen * size / max(consumed, 1)))
        where = "whole file" if exact else f"first {seen:,} rows"
    out.append(f"  rows: {total:,}" + ("" if exact else " (estimate from the bytes per line so far)"))
    out.append(f"  users: {frame['user'].nunique():,}, items: {frame['item'].nunique():,} ({where})")
    y = frame["rating"]
    out.append(f"  {spec.target}: {y.min():g} .. {y.max():g}, mean {y.mean():.4g} ({where})")
    if "timestamp" in frame:
        t0, t1 = int(frame["timestamp"].min()), int(frame["timestamp"].max())
        fmt = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
        out.append(f"  time: {fmt(t0)} .. {fmt(t1)} UTC, {(t1 - t0) / 86400:.1f} days ({where})")
    else:
        out.append("  time: no timestamp mapped (file order is the time order)")
    dup = frame.duplicated(["user", "item"]).sum()
    out.append(f"  duplicated (user, item) rows: {dup:,} ({where}; policy {spec.duplicates})")
    if spec.items is not None:
        out.append(f"  items file: {spec.items.path} ({'found' if spec.items.path.exists() else 'MISSING'})")
    return out

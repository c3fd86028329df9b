"""Parsers of the Amazon 2014 review data (McAuley et al.): Video Games and Electronics, the
conversion data sets of Section 4.1.2 / Table 3 (Appendix A.1).

Two files per category, read as published (no archive):

* ``ratings_<Category>.csv`` — "ratings only": ``user,item,rating,timestamp`` lines, no header,
  string ids (user ``A2HD75EMZR8QLN``, item = ASIN ``0700099867``: leading zeros matter, so ids
  stay strings), ratings 1.0-5.0, Unix seconds. Read by pandas' C parser; if anything is off
  (a field count, a number, an empty id, a rating outside (0, 5]) a line-by-line pass names the
  first bad line.
* ``meta_<Category>.json.gz`` — one *Python literal* dict per line (single quotes, ``u''``
  strings: not JSON), parsed with ``ast.literal_eval``, streamed line by line from the gzip.
  Fields used: ``asin`` (the item id), ``title``, ``categories`` (a list of category paths, each
  a list of names from the top level down, e.g. ``[['Video Games', 'Xbox 360', 'Games']]``;
  may be empty) and ``brand`` (often missing). A line that is not valid UTF-8 is read as latin-1.

Item side features (the prepared ``items`` table; DeepFM/DIN fields, A.1 "category and brand"):

* ``category`` — the *leaf* (last name) of every category path of the item, deduplicated in order
  of appearance and joined by ``|`` ("" when there is none). The top level is the data set's own
  category for nearly every item ("Video Games"), so it carries no information; the leaf is what
  the DIN authors' Amazon preprocessing keeps (``categories[-1][-1]``), here for every path of a
  multi-listed item (a multi-valued field, mean-pooled by the models). A ``|`` inside a name
  becomes ``/``.
* ``brand`` — the brand string, stripped, ``|`` as ``/`` ("" when missing).
* ``genres`` — the same tokens as ``category``: the column the MovieLens-side consumers read
  (``cel.train.feeds.item_genres``, the Table 5 genre initialisation), so they work unchanged.
* ``title`` — kept for inspection, "" when missing.
* ``top_category`` — the *top-level category* below the data set's own: the second name of every
  category path whose first name is the data set's root ("PC", "PlayStation 4", "Xbox One" under
  "Video Games"; "Camera & Photo" under "Electronics"), deduplicated in order of appearance and
  joined by ``|`` ("" when there is none; a path of one name or under another root gives none).
  The root is the first name shared by the paths of the most items of the metadata file (ties:
  the smallest name). SAML's Amazon scenario (:mod:`cel.data.amazon_scenarios`) is built from it.

:func:`parse_amazon` returns raw frames in the shape of :mod:`cel.data.parsers` (``raw_user``,
``raw_item``, ``rating``, ``timestamp`` / ``raw_item`` + item columns) with the items restricted
to the rated ones (an item with metadata but no rating is dropped; a rated item without metadata
gets empty features), ready for :func:`cel.data.prepare.remap`, which maps the string ids to
0..N-1 / 0..M-1 in sorted order and keeps the item strings (``raw_item``); :func:`user_mapping`
gives the user strings under the same rule.

Labels: the conversion task labels an interaction positive when rating >= 4
(``Conversion(threshold=4)``); the prepared tables keep the ratings.

Every malformed line raises :class:`~cel.errors.DataError` naming the file and the 1-based line.
"""
from __future__ import annotations

import ast
import contextlib
import csv
import gzip
import io
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pandas as pd

from cel.errors import DataError

Source = str | Path | bytes
RATING_COLUMNS = ["raw_user", "raw_item", "rating", "timestamp"]
ITEM_COLUMNS = ["raw_item", "title", "genres", "category", "brand", "top_category"]
GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def open_binary(src: Source) -> Iterator[BinaryIO]:
    """A binary stream of ``src`` (a path or the bytes themselves), gunzipped on the fly when it
    starts with the gzip magic number, whatever its name."""
    raw = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else open(src, "rb")
    try:
        gz = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        yield gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
    finally:
        raw.close()


def _numbered_lines(src: Source, name: str) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its end) for every non-blank line, split on b"\\n" only."""
    no = 0
    with open_binary(src) as fh:
        try:
            for no, line in enumerate(fh, start=1):
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield no, line
        except (OSError, EOFError, zlib.error) as exc:        # BadGzipFile is an OSError
            raise DataError(f"{name}: unreadable after line {no} ({exc}); the file is truncated or "
                            "corrupt: delete it and fetch it again") from None


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


# ------------------------------------------------------------------------------------ ratings
def read_ratings(src: Source, name: str) -> pd.DataFrame:
    """``user,item,rating,timestamp`` lines -> raw_user, raw_item (str), rating, timestamp."""
    try:
        with open_binary(src) as fh:
            df = pd.read_csv(fh, sep=",", header=None, names=RATING_COLUMNS, engine="c", quoting=csv.QUOTE_NONE,
                             dtype={"raw_user": str, "raw_item": str, "rating": "float64", "timestamp": "int64"},
                             na_filter=False, skip_blank_lines=True, encoding="utf-8")
        ok = (len(df) > 0 and df["rating"].between(0, 5, inclusive="right").all()
              and (df["raw_user"].str.len() > 0).all() and (df["raw_item"].str.len() > 0).all())
        if ok:
            return df
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        pass
    return _read_ratings_slow(src, name)


def _read_ratings_slow(src: Source, name: str) -> pd.DataFrame:
    rows = []
    for no, raw in _numbered_lines(src, name):
        line = _decode(raw)
        parts = line.split(",")
        try:
            if len(parts) != 4:
                raise ValueError(f"expected 4 fields separated by ',', found {len(parts)}")
            user, item = parts[0].strip(), parts[1].strip()
            if not user or not item:
                raise ValueError("empty user or item id")
            rating, stamp = float(parts[2]), int(parts[3])
            if not 0 < rating <= 5:
                raise ValueError(f"rating {rating} outside (0, 5]")
        except ValueError as exc:
            raise DataError(f"{name}, line {no}: malformed rating line {line!r}: {exc}") from None
        rows.append((user, item, rating, stamp))
    if not rows:
        raise DataError(f"{name}: no rating lines")
    return pd.DataFrame(rows, columns=RATING_COLUMNS)


# --------------------------------------------------------------------------------------- meta
def _text(d: dict, key: str) -> str:
    value = d.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is a {type(value).__name__}, expected a string")
    return value.strip()


def leaf_categories(categories) -> str:
    """``[['A', 'B', 'C'], ['A', 'D']]`` -> ``"C|D"``: the leaf of every path, deduplicated."""
    if not isinstance(categories, list) or not all(isinstance(p, list) for p in categories):
        raise ValueError("'categories' is not a list of lists")
    leaves: dict[str, None] = {}
    for path in categories:
        if not all(isinstance(c, str) for c in path):
            raise ValueError("'categories' holds a name that is not a string")
        if path and path[-1].strip():
            leaves[path[-1].strip().replace("|", "/")] = None
    return "|".join(leaves)


def category_heads(categories) -> tuple[tuple[str, str], ...]:
    """``[['A', 'B', 'C'], ['A', 'D'], ['X'], ['A', 'B']]`` -> ``(('A', 'B'), ('A', 'D'))``: the first two
    names of every path that has two, deduplicated in order (a ``|`` inside a name becomes ``/``).
    ``categories`` must already have passed :func:`leaf_categories`' checks."""
    heads: dict[tuple[str, str], None] = {}
    for path in categories:
        names = [c.strip().replace("|", "/") for c in path]
        if len(names) >= 2 and names[0] and names[1]:
            heads[(names[0], names[1])] = None
    return tuple(heads)


def top_categories(heads: dict[str, tuple[tuple[str, str], ...]]) -> tuple[str, dict[str, str]]:
    """(root, asin -> ``top_category``) from every item's :func:`category_heads`: the root is the first
    name of the most items' paths (ties: the smallest name; "" when no item has a path of two
    names), an item's top categories the second names of its paths under the root, joined by ``|``."""
    count: dict[str, int] = {}
    for pairs in heads.values():
        for first in dict.fromkeys(a for a, _ in pairs):
            count[first] = count.get(first, 0) + 1
    root = min(count, key=lambda c: (-count[c], c)) if count else ""
    return root, {asin: "|".join(b for a, b in pairs if a == root) for asin, pairs in heads.items()}


def read_meta(src: Source, name: str) -> pd.DataFrame:
    """``meta_<Category>.json.gz`` -> raw_item, title, genres, category, brand, top_category (one row
    per ASIN; a repeated ASIN keeps its first line)."""
    rows: dict[str, tuple[str, str, str, str, str]] = {}
    heads: dict[str, tuple[tuple[str, str], ...]] = {}
    for no, raw in _numbered_lines(src, name):
        line = _decode(raw)
        try:
            d = ast.literal_eval(line.strip())
            if not isinstance(d, dict):
                raise ValueError(f"a {type(d).__name__}, expected a dict")
            asin = _text(d, "asin")
            if not asin:
                raise ValueError("no 'asin'")
            category = leaf_categories(d.get("categories", []))
            if asin not in rows:
                rows[asin] = (asin, _text(d, "title"), category, category, _text(d, "brand").replace("|", "/"))
                heads[asin] = category_heads(d.get("categories", []))
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError) as exc:
            snippet = line if len(line) <= 120 else line[:117] + "..."
            raise DataError(f"{name}, line {no}: malformed metadata line {snippet!r}: {exc}") from None
    _, top = top_categories(heads)
    return pd.DataFrame([(*row, top[asin]) for asin, row in rows.items()], columns=ITEM_COLUMNS)


# ---------------------------------------------------------------------------------- together
def parse_amazon(ratings: Source, meta: Source, names: tuple[str, str] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(raw interactions, raw items of exactly the rated items) from the two files; ``names``
    (for messages) default to the paths. Same shapes as :data:`cel.data.parsers.PARSERS`."""
    names = names or (str(ratings) if not isinstance(ratings, bytes) else "ratings",
                      str(meta) if not isinstance(meta, bytes) else "meta")
    inter = read_ratings(ratings, names[0])
    rated = pd.DataFrame({"raw_item": pd.unique(inter["raw_item"])})
    items = rated.merge(read_meta(meta, names[1]), on="raw_item", how="left").fillna("")
    return inter, items[ITEM_COLUMNS]


def user_mapping(inter: pd.DataFrame) -> pd.DataFrame:
    """user (0..N-1) -> raw_user string, in the order :func:`cel.data.prepare.remap` assigns."""
    users = np.sort(inter["raw_user"].unique())
    return pd.DataFrame({"user": np.arange(len(users), dtype=np.int64), "raw_user": users})

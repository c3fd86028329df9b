"""Parsers of the raw MovieLens formats into tidy frames (ids still the raw ids).

Every malformed line raises :class:`~cel.data.fetch.DataError` naming the file and line number.
"""
from __future__ import annotations

import csv
import io

import pandas as pd

from cel.data.amazon import parse_amazon
from cel.errors import DataError

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]


def _lines(data: bytes, encoding: str):
    # split on "\n" only: str.splitlines() would also break inside a latin-1 title at 0x85, 0x0b, ...
    for no, line in enumerate(data.decode(encoding).split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield no, line


def parse_ratings(data: bytes, name: str, sep: str, encoding: str = "latin-1") -> pd.DataFrame:
    """user, item, rating, timestamp lines separated by ``sep`` (``\\t`` for u.data, ``::`` else).

    Fast path: pandas' C parser. If anything is off, the validating line-by-line parser runs and
    names the first bad line.
    """
    try:
        text = data.decode(encoding)
        if sep != "\t":
            if "\t" in text:
                raise ValueError("tab in a '::' file")    # let the validating parser name the line
            text = text.replace(sep, "\t")
        df = pd.read_csv(
            io.StringIO(text), sep="\t", header=None, names=["raw_user", "raw_item", "rating", "timestamp"],
            dtype={"raw_user": "int64", "raw_item": "int64", "rating": "float64", "timestamp": "int64"},
            engine="c", skip_blank_lines=True, quoting=csv.QUOTE_NONE,
        )
        if len(df) and df["rating"].between(0, 5, inclusive="right").all() and not df.isna().any().any():
            return df
    except (ValueError, pd.errors.ParserError):
        pass
    return _parse_ratings_slow(data, name, sep, encoding)


def _parse_ratings_slow(data: bytes, name: str, sep: str, encoding: str) -> pd.DataFrame:
    users, items, ratings, stamps = [], [], [], []
    for no, line in _lines(data, encoding):
        parts = line.split(sep)
        try:
            if len(parts) != 4:
                raise ValueError(f"expected 4 fields separated by {sep!r}, found {len(parts)}")
            u, i, r, t = int(parts[0]), int(parts[1]), float(parts[2]), int(parts[3])
            if not 0 < r <= 5:
                raise ValueError(f"rating {r} outside (0, 5]")
        except ValueError as exc:
            raise DataError(f"{name}, line {no}: malformed rating line {line!r}: {exc}") from None
        users.append(u), items.append(i), ratings.append(r), stamps.append(t)
    if not users:
        raise DataError(f"{name}: no rating lines")
    return pd.DataFrame({"raw_user": users, "raw_item": items, "rating": ratings, "timestamp": stamps})


def parse_items_100k(data: bytes, name: str) -> pd.DataFrame:
    """u.item: id|title|release|video release|IMDb URL|19 genre flags (latin-1)."""
    rows = []
    for no, line in _lines(data, "latin-1"):
        parts = line.split("|")
        try:
            if len(parts) != 5 + len(GENRES_100K):
                raise ValueError(f"expected {5 + len(GENRES_100K)} fields, found {len(parts)}")
            flags = [int(x) for x in parts[5:]]
            genres = "|".join(g for g, f in zip(GENRES_100K, flags) if f)
            rows.append((int(parts[0]), parts[1], genres))
        except ValueError as exc:
            raise DataError(f"{name}, line {no}: malformed item line: {exc}") from None
    return pd.DataFrame(rows, columns=["raw_item", "title", "genres"])


def parse_items_dat(data: bytes, name: str) -> pd.DataFrame:
    """movies.dat of ML-1m / ML-10m: id::title::genre|genre (latin-1)."""
    rows = []
    for no, line in _lines(data, "latin-1"):
        parts = line.split("::")
        try:
            if len(parts) != 3:
                raise ValueError(f"expected 3 fields separated by '::', found {len(parts)}")
            rows.append((int(parts[0]), parts[1], parts[2]))
        except ValueError as exc:
            raise DataError(f"{name}, line {no}: malformed movie line {line!r}: {exc}") from None
    return pd.DataFrame(rows, columns=["raw_item", "title", "genres"])


def parse_ml_100k(ratings: bytes, items: bytes, names: tuple[str, str]):
    return parse_ratings(ratings, names[0], "\t"), parse_items_100k(items, names[1])


def parse_ml_dat(ratings: bytes, items: bytes, names: tuple[str, str]):
    return parse_ratings(ratings, names[0], "::"), parse_items_dat(items, names[1])


PARSERS = {"ml-100k": parse_ml_100k, "ml-dat": parse_ml_dat, "amazon": parse_amazon}

"""Amazon 2014 parsers (Section 4.1.2, A.1) on small files written in exactly the published format:
a header-less ``user,item,rating,timestamp`` CSV and a gzip of Python-literal dict lines (unicode
titles, escapes, a missing brand, empty category lists, an item with metadata but no rating and
one with ratings but no metadata). Malformed lines must name the file and the 1-based line."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from cel.data.amazon import leaf_categories, parse_amazon, read_meta, read_ratings, user_mapping
from cel.data.prepare import remap
from cel.errors import DataError
from cel.train.feeds import item_genres
from cel.train.tasks import Conversion

RATINGS = """\
A2HD75EMZR8QLN,0700099867,1.0,1341792000
A3UR8NLLY1ZHCX,0700099867,4.0,1372550400
A1INA0F5CWW3J4,B00004SVV9,5.0,1145145600
A2HD75EMZR8QLN,B00004SVV9,3.0,1393545600
A1INA0F5CWW3J4,B0000296O5,4.0,1019260800
A3UR8NLLY1ZHCX,B00NOMETA1,2.0,1400198400
"""

META_DICTS = [
    {"asin": "0700099867", "related": {"also_bought": ["B000TI836G", "B003Q53VZC"], "bought_together": ["B002I0K50U"]},
     "title": "Dirt 3", "price": 8.95, "salesRank": {"Video Games": 2250},
     "imUrl": "http://ecx.images-amazon.com/images/I/51Zu4B%2BZ7LL._SY300_.jpg",
     "categories": [["Video Games", "Xbox 360", "Games"], ["Video Games", "PC", "Games"]], "brand": "Codemasters"},
    {"asin": "B00004SVV9", "title": "Pokémon Snap – ポケモンスナップ", "price": 24.99,   # unicode, no brand
     "categories": [["Video Games", "More Systems", "Nintendo 64", "Games"], ["Video Games", "Kids | Family"]]},
    {"asin": "B00BGA9WK2", "title": "Only metadata, never rated", "categories": [["Video Games", "Accessories"]],
     "brand": "Nyko"},
]
META_LINES = [repr(d) for d in META_DICTS] + [
    # handwritten: a u'' string with an escape, a double-quoted title, an empty category list
    "{'asin': 'B0000296O5', 'title': u\"Assassin's Cr\\xe9ed\", 'brand': u'Ubisoft | Montr\\xe9al ', 'categories': []}",
]


def write_files(tmp_path, ratings=RATINGS, meta_lines=None):
    r = tmp_path / "ratings_Video_Games.csv"
    r.write_text(ratings)
    m = tmp_path / "meta_Video_Games.json.gz"
    with gzip.open(m, "wb") as fh:
        fh.write(("\n".join(META_LINES if meta_lines is None else meta_lines) + "\n").encode("utf-8"))
    return r, m


def test_parse_and_remap_in_the_real_format(tmp_path):
    r, m = write_files(tmp_path)
    raw, raw_items = parse_amazon(r, m)
    assert list(raw.columns) == ["raw_user", "raw_item", "rating", "timestamp"] and len(raw) == 6
    assert raw["raw_item"].iloc[0] == "0700099867"                       # leading zero kept: ids are strings
    assert set(raw_items["raw_item"]) == set(raw["raw_item"])            # exactly the rated items
    inter, items = remap(raw, raw_items)                                 # the prepare step of every data set
    assert list(inter.columns) == ["user", "item", "rating", "timestamp"]
    assert sorted(inter["user"].unique()) == [0, 1, 2] and sorted(inter["item"].unique()) == [0, 1, 2, 3]
    assert items["item"].tolist() == [0, 1, 2, 3]
    assert items["raw_item"].tolist() == ["0700099867", "B0000296O5", "B00004SVV9", "B00NOMETA1"]  # sorted strings
    by = items.set_index("raw_item")
    assert by.loc["0700099867", ["category", "brand", "title"]].tolist() == ["Games", "Codemasters", "Dirt 3"]
    assert by.loc["B00004SVV9", "category"] == "Games|Kids / Family"    # every path's leaf; '|' escaped
    assert by.loc["B00004SVV9", "brand"] == ""                           # missing brand
    assert by.loc["B00004SVV9", "title"] == "Pokémon Snap – ポケモンスナップ"
    assert by.loc["B0000296O5", ["title", "brand", "category"]].tolist() == ["Assassin's Créed", "Ubisoft / Montréal", ""]
    assert by.loc["B00NOMETA1", ["title", "brand", "category"]].tolist() == ["", "", ""]   # rated, no metadata
    assert (items["genres"] == items["category"]).all()
    # the string mappings: items in items.raw_item, users under remap's rule
    users = user_mapping(raw)
    assert (users["raw_user"].to_numpy()[inter["user"]] == raw["raw_user"].to_numpy()).all()
    assert (items["raw_item"].to_numpy()[inter["item"]] == raw["raw_item"].to_numpy()).all()
    assert np.array_equal(inter["rating"], raw["rating"]) and inter["timestamp"].dtype == np.int64


def test_side_features_reach_the_models_feature_tables(tmp_path):
    _, items = remap(*parse_amazon(*write_files(tmp_path)))
    ids, mask = item_genres(items, len(items))                           # category, as DeepFM's "genre" field
    assert ids.shape == (4, 2) and mask.sum(1).tolist() == [1, 0, 2, 0]
    _, brand_mask = item_genres(items.assign(genres=items["brand"]), len(items))
    assert brand_mask.sum(1).tolist() == [1, 1, 0, 0]


def test_conversion_label_is_rating_at_least_4(tmp_path):
    inter, _ = remap(*parse_amazon(*write_files(tmp_path)))
    y = Conversion(threshold=4.0).labels(torch.tensor(inter["rating"].to_numpy()))
    assert y.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_bytes_and_paths_and_uncompressed_meta_agree(tmp_path):
    r, m = write_files(tmp_path)
    a = parse_amazon(r, m)
    b = parse_amazon(r.read_bytes(), m.read_bytes(), ("ratings.csv", "meta.json.gz"))
    plain = tmp_path / "meta.json"
    plain.write_bytes(gzip.decompress(m.read_bytes()))                  # the gzip is recognised by content
    c = parse_amazon(r, plain)
    for x, y in ((a, b), (a, c)):
        assert x[0].equals(y[0]) and x[1].equals(y[1])


def test_meta_keeps_the_first_line_of_a_repeated_asin_and_skips_blank_lines(tmp_path):
    _, m = write_files(tmp_path, meta_lines=[META_LINES[0], "", repr({**META_DICTS[0], "brand": "Other"})])
    meta = read_meta(m, "meta.json.gz")
    assert len(meta) == 1 and meta["brand"].iloc[0] == "Codemasters"


def test_leaf_categories():
    assert leaf_categories([["A", "B", "C"], ["A", "D"], ["X", "C"]]) == "C|D"
    assert leaf_categories([]) == "" and leaf_categories([[]]) == ""
    with pytest.raises(ValueError, match="list of lists"):
        leaf_categories(["A", "B"])


BAD_RATINGS = {
    "five fields": "A9,B0000296O5,4.0,1019260800,extra",
    "three fields": "A9,B0000296O5,4.0",
    "not a number": "A9,B0000296O5,four,1019260800",
    "rating out of range": "A9,B0000296O5,7.0,1019260800",
    "empty item": "A9,,4.0,1019260800",
    "float timestamp": "A9,B0000296O5,4.0,10192608.5",
}


@pytest.mark.parametrize("bad", list(BAD_RATINGS))
def test_a_malformed_rating_line_names_file_and_line(tmp_path, bad):
    lines = RATINGS.splitlines()
    lines.insert(2, BAD_RATINGS[bad])                                     # line 3
    r, _ = write_files(tmp_path, ratings="\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"ratings_Video_Games\.csv, line 3: malformed rating line"):
        read_ratings(r, str(r))
    with pytest.raises(DataError, match=r"ratings_Video_Games\.csv, line 3"):
        parse_amazon(r, tmp_path / "meta_Video_Games.json.gz")


def test_an_empty_ratings_file_is_an_error(tmp_path):
    r, _ = write_files(tmp_path, ratings="\n")
    with pytest.raises(DataError, match="no rating lines"):
        read_ratings(r, "ratings_Video_Games.csv")


BAD_META = {
    "json, not a literal": '{"asin": "B0000296O5", "title": "x", "available": true}',
    "truncated dict": "{'asin': 'B0000296O5', 'title': 'Halo",
    "not a dict": "['B0000296O5', 'Halo']",
    "no asin": "{'title': 'Halo', 'brand': 'Microsoft'}",
    "flat categories": "{'asin': 'B0000296O5', 'categories': ['Video Games', 'PC']}",
    "brand not a string": "{'asin': 'B0000296O5', 'brand': 42}",
}


@pytest.mark.parametrize("bad", list(BAD_META))
def test_a_malformed_meta_line_names_file_and_line(tmp_path, bad):
    _, m = write_files(tmp_path, meta_lines=META_LINES[:1] + [BAD_META[bad]] + META_LINES[1:])
    with pytest.raises(DataError, match=r"meta_Video_Games\.json\.gz, line 2: malformed metadata line"):
        parse_amazon(tmp_path / "ratings_Video_Games.csv", m)


def test_a_truncated_gzip_names_the_file(tmp_path):
    _, m = write_files(tmp_path, meta_lines=META_LINES * 50)
    m.write_bytes(m.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"meta_Video_Games\.json\.gz: unreadable after line \d+"):
        read_meta(m, m.name)

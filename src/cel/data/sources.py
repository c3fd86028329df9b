"""Raw dataset sources: canonical URL, archive name, and the checksums of the member files read.

Checksums are of the *member files* (the archive bytes may differ between mirrors, e.g. the
repacked ML-100k mirror). Where the sha256 of a member is not known, the git blob id is
(``git hash-object``); where neither is known the checksum is ``None`` and the prepared data
records the observed sha256 instead (see ``data.require_checksums``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Checksum:
    algo: str  # "sha256" | "git-blob"
    value: str


@dataclass(frozen=True)
class Member:
    path: str                      # path inside the archive
    checksum: Checksum | None      # None = not known to the project
    encoding: str = "latin-1"


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    archive: str                   # file name, also the name looked up in a mirror directory
    parser: str                    # key of cel.data.parsers.PARSERS
    members: dict[str, Member] = field(default_factory=dict)  # role -> member
    # role -> URL of a plain file (Amazon: no archive is published); fetched one by one and packed
    # into ``archive`` (cel.data.amazon_fetch), members named by the files' published names
    files: dict[str, str] = field(default_factory=dict)


def _sha(v: str) -> Checksum:
    return Checksum("sha256", v)


GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
# Amazon 2014 (McAuley et al.), "ratings only" CSV and metadata per category; no checksums published
SNAP = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"

SOURCES: dict[str, Source] = {
    "ml-100k": Source(
        name="ml-100k",
        url=GROUPLENS + "ml-100k.zip",
        archive="ml-100k.zip",
        parser="ml-100k",
        members={
            "ratings": Member("ml-100k/u.data", _sha("06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490")),
            "items": Member("ml-100k/u.item", _sha("553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701")),
        },
    ),
    "ml-1m": Source(
        name="ml-1m",
        url=GROUPLENS + "ml-1m.zip",
        archive="ml-1m.zip",
        parser="ml-dat",
        members={
            # sha256 of ratings.dat is not published; its git blob id is (shared/data/MANIFEST.md)
            "ratings": Member("ml-1m/ratings.dat", Checksum("git-blob", "77a7c4b150f588c23bb9e1f068aa996c0b413695")),
            "items": Member("ml-1m/movies.dat", _sha("0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9")),
        },
    ),
    "ml-10m": Source(
        name="ml-10m",
        url=GROUPLENS + "ml-10m.zip",
        archive="ml-10m.zip",
        parser="ml-dat",
        members={
            "ratings": Member("ml-10M100K/ratings.dat", None),
            "items": Member("ml-10M100K/movies.dat", None),
        },
    ),
    **{f"amazon-{slug}": Source(
        name=f"amazon-{slug}",
        url=SNAP + f"ratings_{cat}.csv",
        archive=f"amazon-{slug}.zip",
        parser="amazon",
        members={"ratings": Member(f"ratings_{cat}.csv", None, "utf-8"),
                 "items": Member(f"meta_{cat}.json.gz", None, "utf-8")},
        files={"ratings": SNAP + f"ratings_{cat}.csv", "items": SNAP + f"meta_{cat}.json.gz"},
    ) for slug, cat in (("video-games", "Video_Games"), ("electronics", "Electronics"))},
}

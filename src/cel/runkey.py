"""RunKey: the one identity of a run, used by the Snakefile, the CLI, the run driver, tables and
tracking. A run is task × dataset × variant × model × method × compression × fold × seed:

    results/runs/{task}/{dataset}/{variant}/{model}/{method}/cr{compression}/f{fold}/s{seed}/

``compression`` is a percentage written as in the paper's tables ("100", "5", "0.5").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cel.errors import ConfigError

FIELDS = ("task", "dataset", "variant", "model", "method", "compression", "fold", "seed")


def format_compression(c: float | str) -> str:
    """100 -> '100', 0.5 -> '0.5' (the keys used in paper_results.yaml and in run paths)."""
    return f"{float(c):g}"


@dataclass(frozen=True)
class RunKey:
    task: str
    dataset: str
    variant: str
    model: str
    method: str
    compression: str
    fold: int
    seed: int = 0

    #: the path pattern below ``runs/`` (Snakemake wildcards have the field names)
    PATTERN = "{task}/{dataset}/{variant}/{model}/{method}/cr{compression}/f{fold}/s{seed}"

    @property
    def key(self) -> str:
        return (f"{self.task}/{self.dataset}/{self.variant}/{self.model}/{self.method}"
                f"/cr{self.compression}/f{self.fold}/s{self.seed}")

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, text: str) -> "RunKey":
        """Inverse of :attr:`key`: ``TASK/DATASET/VARIANT/MODEL/METHOD/crC/fK/sS``."""
        parts = str(text).strip("/").split("/")
        ok = (len(parts) == 8 and parts[5].startswith("cr") and parts[6][:1] == "f" and parts[7][:1] == "s"
              and parts[6][1:].isdigit() and parts[7][1:].isdigit())
        if not ok:
            raise ConfigError("a run key must look like TASK/DATASET/VARIANT/MODEL/METHOD/crC/fK/sS "
                              f"(e.g. regression/ml-100k/original/nmf/cel/cr5/f0/s0), got {text!r}")
        return cls(*parts[:5], format_compression(parts[5][2:]), int(parts[6][1:]), int(parts[7][1:]))

    @classmethod
    def from_mapping(cls, m) -> "RunKey":
        """From a dict or Snakemake wildcards (fields by name; ``task``/``seed`` default for old records)."""
        get = m.get if hasattr(m, "get") else (lambda k, d=None: getattr(m, k, d))
        return cls(get("task", "regression"), get("dataset"), get("variant"), get("model"), get("method"),
                   format_compression(get("compression")), int(get("fold")), int(get("seed", 0) or 0))

    def as_dict(self) -> dict:
        return asdict(self)

    def path(self, results: str | Path) -> Path:
        return Path(results) / "runs" / self.key


assert tuple(f.name for f in fields(RunKey)) == FIELDS

"""Configuration: one JSON schema, validated once, turned into typed dataclasses.

The schema (``resources/config.schema.yaml``) carries a description and a default for every
key and rejects unknown keys. Code below never reads the raw dict by string key deep inside
the library: it gets a :class:`ProjectConfig` or a :class:`cel.runkey.RunKey`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cel.errors import ConfigError
from cel.runkey import RunKey, format_compression  # noqa: F401 (format_compression re-exported)


def load_schema() -> dict:
    text = resources.files("cel").joinpath("resources/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _fill_defaults(node: Any, schema: dict) -> Any:
    """Fill ``default`` values of the schema into ``node`` (recursively, objects and arrays)."""
    if isinstance(node, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in node and "default" in sub:
                node[key] = copy.deepcopy(sub["default"])
            if key in node:
                node[key] = _fill_defaults(node[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in node:
                if key not in schema.get("properties", {}):
                    node[key] = _fill_defaults(node[key], extra)
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        node = [_fill_defaults(x, schema["items"]) for x in node]
    return node


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        # the offending key is in the message, not in the path
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path = ".".join(filter(None, [path, *extra]))
    return path or "<root>"


def validate(raw: dict) -> dict:
    """Validate ``raw`` against the schema, fill defaults, and return a new dict.

    Raises :class:`ConfigError` naming the offending key on the first problem found.
    """
    schema = load_schema()
    cfg = resolve_extends(raw or {})
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        kind = "unknown key" if e.validator == "additionalProperties" else "invalid value"
        raise ConfigError(f"config {kind} at '{_key_path(e)}': {e.message}")
    cfg.setdefault("tasks", {}).setdefault("regression", {"kind": "regression"})
    cfg = _fill_defaults(cfg, schema)
    _check_references(cfg)
    return cfg


REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_extends(raw: dict, seen: tuple = ()) -> dict:
    """A profile with ``extends: other.yaml`` is that profile updated by its own keys (mappings
    merge key by key, lists and values replace; ``extra_grid`` blocks are appended to the grid). The path is taken as given, else from the
    project root (Snakemake may run in another directory)."""
    cfg = copy.deepcopy(raw)
    parent, extra = cfg.pop("extends", None), cfg.pop("extra_grid", None) or []
    if not parent:
        return {**cfg, "grid": cfg.get("grid", []) + extra} if extra else cfg
    path = Path(parent) if Path(parent).exists() else REPO_ROOT / parent
    if not path.exists():
        raise ConfigError(f"config invalid value at 'extends': no file {parent}")
    if path.resolve() in seen:
        raise ConfigError(f"config invalid value at 'extends': {parent} extends itself")
    base = yaml.safe_load(path.read_text()) or {}
    merged = _deep_update(resolve_extends(base, seen + (path.resolve(),)), cfg)
    merged["grid"] = merged.get("grid", []) + extra          # extra_grid: blocks added to the parent's grid
    return merged


def _check_references(cfg: dict) -> None:
    """Cross-key checks the JSON schema cannot express (names used in the grid must exist)."""
    from cel.embeddings import EMBEDDINGS
    from cel.models import MODELS

    for b, block in enumerate(cfg["grid"]):
        for key, known in (
            ("tasks", cfg["tasks"]),
            ("datasets", cfg["datasets"]),
            ("variants", cfg["variants"]),
            ("models", MODELS),
            ("methods", {**EMBEDDINGS, **cfg["methods"]}),
        ):
            for name in block.get(key, []):
                if name not in known:
                    raise ConfigError(
                        f"config invalid value at 'grid.{b}.{key}': '{name}' is not defined "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
        for name in block["models"]:
            if name not in cfg["models"]:
                cfg["models"][name] = _fill_defaults({}, load_schema()["properties"]["models"]["additionalProperties"])
        for name in block["methods"]:
            cfg["methods"].setdefault(name, {})
            params = {**method_entry(cfg, name)[1], **block["params"].get(name, {})}
            EMBEDDINGS[method_entry(cfg, name)[0]].Params.from_dict(params, key=f"methods.{name}")
        for name in block["params"]:
            if name not in block["methods"]:
                raise ConfigError(f"config unknown key at 'grid.{b}.params.{name}': not a method of the block")
    for name in cfg["methods"]:
        if method_entry(cfg, name)[0] not in EMBEDDINGS:
            raise ConfigError(f"config unknown key at 'methods.{name}': no such embedding method "
                              f"(set base: to one of {', '.join(sorted(EMBEDDINGS))})")
    for name in cfg["models"]:
        if name not in MODELS:
            raise ConfigError(f"config unknown key at 'models.{name}': no such interaction model")


def method_entry(cfg: dict, name: str) -> tuple[str, dict]:
    """(registry key, parameters) of a configured method: ``base`` names the registered class
    (default: the method's own name), so ablations are named variants of one method."""
    entry = dict(cfg["methods"].get(name, {}))
    return entry.pop("base", name), entry


def load_config(*paths: str | os.PathLike, overrides: dict | None = None) -> "ProjectConfig":
    """Read one or more YAML profiles (later ones update earlier ones), validate, type."""
    raw: dict = {}
    for p in paths:
        with open(p) as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        raw = _deep_update(raw, loaded)
    if overrides:
        raw = _deep_update(raw, overrides)
    return ProjectConfig.from_dict(validate(raw))


def _deep_update(base: dict, new: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------- typed views
@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "gd"
    lr: float = 1e-4
    steps: int = 2000
    eval_every: int = 50
    log_every: int = 200
    seed: int = 0
    threads: int = 1
    user_optimizer: str | None = None
    user_lr: float | None = None
    val_fraction: float = 0.0
    patience: int = 0
    min_steps: int = 0
    checkpoint_every: int = 0
    grad_avg_scope: str = "loss"
    refit: bool = False


@dataclass(frozen=True)
class ModelConfig:
    rank: int = 64
    reg: float = 1.0
    nonneg: str = "abs"
    history: int = 0                                  # H for history models (0 = the model's default)
    side_features: tuple[str, ...] | None = None      # None = the model's default fields

    def __post_init__(self):
        if self.side_features is not None:
            object.__setattr__(self, "side_features", tuple(self.side_features))


@dataclass
class ProjectConfig:
    raw: dict
    results_dir: Path
    archives_dir: Path
    train: TrainConfig
    folds: int
    split_seed: int
    only_datasets: tuple[str, ...] = field(default_factory=tuple)
    only_folds: tuple[int, ...] = field(default_factory=tuple)      # a quick profile: fewer folds...
    only_seeds: tuple[int, ...] = field(default_factory=tuple)      # ... and seeds of the same grid
    _block_params: dict = field(default_factory=dict, repr=False)
    _block_search: dict = field(default_factory=dict, repr=False)
    _block_tune: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, cfg: dict) -> "ProjectConfig":
        only = tuple(s.strip() for s in (cfg["only_datasets"] or "").split(",") if s.strip())
        only_folds = tuple(int(s) for s in str(cfg["only_folds"] or "").split(",") if s.strip())
        only_seeds = tuple(int(s) for s in str(cfg["only_seeds"] or "").split(",") if s.strip())
        for name in only:
            if name not in cfg["datasets"]:
                raise ConfigError(f"config invalid value at 'only_datasets': unknown dataset '{name}'")
        obj = cls(
            raw=cfg,
            results_dir=Path(cfg["results_dir"]),
            archives_dir=Path(cfg["archives_dir"]),
            train=TrainConfig(**cfg["train"]),
            folds=cfg["split"]["folds"],
            split_seed=cfg["split"]["seed"],
            only_datasets=only,
            only_folds=only_folds,
            only_seeds=only_seeds,
        )
        obj.runs()  # checks the grid and records each run's block parameters
        return obj

    # -- lookups -----------------------------------------------------------------------
    def dataset(self, name: str) -> dict:
        return self.raw["datasets"][name]

    def variant(self, name: str) -> dict:
        return self.raw["variants"][name]

    def model(self, name: str) -> ModelConfig:
        return ModelConfig(**self.raw["models"].get(name, {}))

    def method_class(self, name: str) -> str:
        return method_entry(self.raw, name)[0]

    def method_params(self, name: str, key: RunKey | None = None) -> dict:
        """Parameters of a method, with the overrides of the grid block that defines ``key``."""
        params = method_entry(self.raw, name)[1]
        if key is not None:
            params = {**params, **self._block_params.get(key.key, {})}
        return params

    def method_search(self, name: str, key: RunKey) -> dict[str, list]:
        """The hand grid of the grid block that defines ``key``: parameter -> candidate values,
        each tried on the fold's own validation slice (nested selection, never test)."""
        return self._block_search.get(key.key, {})

    def method_tune(self, key: RunKey) -> dict | None:
        """The Optuna search space of ``key``'s block (``grid.tune``), or None when it is not tuned."""
        name = self._block_tune.get(key.key)
        return None if name is None else self.raw["tuning"]["spaces"][name]

    def studies(self) -> list[RunKey]:
        """One study per tuned (task, dataset, variant, model, method, compression, fold): the run
        key with the tuning seed (train.seed); every seed's final run reads its best_params.yaml."""
        out: dict[str, RunKey] = {}
        for key in self.runs():
            if self.method_tune(key) is not None:
                sk = replace(key, seed=self.raw["train"]["seed"])
                out.setdefault(sk.key, sk)
                self._block_params.setdefault(sk.key, self._block_params[key.key])
                self._block_search.setdefault(sk.key, {})
                self._block_tune.setdefault(sk.key, self._block_tune[key.key])
        return list(out.values())

    def resolved_study(self, key: RunKey) -> dict:
        """Everything that determines a study (hashed): its run settings, space and budget."""
        tuning = {k: v for k, v in self.raw["tuning"].items() if k not in ("spaces", "workers", "storage")}
        return {**self.resolved_run(key), "space": self.method_tune(key), "tuning": tuning}

    def task(self, name: str) -> dict:
        """A named task entry: ``kind`` (Task registry), ``threshold``, ``feed``, ``train`` overrides."""
        return self.raw["tasks"][name]

    def task_train(self, name: str) -> TrainConfig:
        """A task's trainer settings: ``train`` with the task's ``train`` overrides."""
        return replace(self.train, **self.task(name).get("train", {}))

    def train_for(self, key: RunKey) -> TrainConfig:
        """The trainer settings of one run: its task's (:meth:`task_train`) with the run's seed."""
        return replace(self.task_train(key.task), seed=key.seed)

    @property
    def mirror(self) -> str | None:
        env = os.environ.get("CEL_DATA_MIRROR")
        return env if env else self.raw["data"]["mirror"]

    @property
    def require_checksums(self) -> bool:
        return self.raw["data"]["require_checksums"]

    def runs(self) -> list[RunKey]:
        """Every run of the grid (deduplicated, in grid order)."""
        out: dict[str, RunKey] = {}
        for block in self.raw["grid"]:
            seeds = block.get("seeds") or [self.raw["train"]["seed"]]
            for task, ds, var, model, method, cr, fold, seed in product(
                block["tasks"], block["datasets"], block["variants"], block["models"], block["methods"],
                block["compressions"], block["folds"], seeds,
            ):
                if ((self.only_datasets and ds not in self.only_datasets) or
                        (self.only_folds and fold not in self.only_folds) or
                        (self.only_seeds and seed not in self.only_seeds)):
                    continue
                if fold >= self.folds:
                    raise ConfigError(f"config invalid value at 'grid': fold {fold} >= split.folds={self.folds}")
                key = RunKey(task, ds, var, model, method, format_compression(cr), fold, seed)
                out.setdefault(key.key, key)
                self._block_params.setdefault(key.key, block["params"].get(method, {}))
                self._block_search.setdefault(key.key, block["search"].get(method, {}))
                self._block_tune.setdefault(key.key, block["tune"].get(method))
                if self._block_tune[key.key] is not None:
                    space = self._block_tune[key.key]
                    if space not in self.raw["tuning"]["spaces"]:
                        raise ConfigError(f"config invalid value at 'grid.tune.{method}': no space {space!r} in "
                                          f"tuning.spaces (known: {', '.join(self.raw['tuning']['spaces']) or 'none'})")
                    from cel.tune.space import check_space

                    check_space(self.raw["tuning"]["spaces"][space], f"tuning.spaces.{space}")
                    if self.train_for(key).val_fraction <= 0:
                        raise ConfigError(f"config invalid value at 'grid.tune.{method}': tuning needs a validation "
                                          f"slice (train.val_fraction > 0), never the test fold")
                    if self._block_search[key.key]:
                        raise ConfigError(f"config invalid value at 'grid.tune.{method}': a block either tunes "
                                          f"a method or hand-grids it (search), not both")
                if self._block_search[key.key] and self.train_for(key).val_fraction <= 0:
                    raise ConfigError(f"config invalid value at 'grid.search.{method}': a hand grid needs a "
                                      f"validation slice (train.val_fraction > 0), never the test fold")
        return list(out.values())

    def resolved_run(self, key: RunKey) -> dict:
        """Everything that determines the result of one run (hashed into `config_hash`)."""
        return {
            "run": key.as_dict(),
            "task": self.task(key.task),
            "dataset": self.dataset(key.dataset),
            "variant": self.variant(key.variant),
            "split": {"folds": self.folds, "seed": self.split_seed},
            "model": asdict(self.model(key.model)),
            "method": {"base": self.method_class(key.method), **self.method_params(key.method, key)},
            "train": asdict(self.train_for(key)),
            **({"search": search} if (search := self.method_search(key.method, key)) else {}),
            **({"tune": tune} if (tune := self.method_tune(key)) is not None else {}),
        }


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]

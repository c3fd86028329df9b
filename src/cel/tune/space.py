"""A search space from the config (``tuning.spaces.<name>``) turned into Optuna suggestions.

A parameter is a method parameter (``t1``, ``delta``, ``lambda_p``...) or a training setting
written ``train.<setting>`` (``train.lr``). Its spec is ``{choices: [...]}`` (categorical) or
``{low, high, log?, step?}``: integers when ``low`` and ``high`` are both integers, floats otherwise.
"""
from __future__ import annotations

from typing import Any

from cel.errors import ConfigError


def check_space(space: dict, where: str) -> None:
    """Every spec is either categorical or a range with low <= high (log ranges above 0)."""
    for name, spec in space.items():
        at = f"{where}.{name}"
        if "choices" in spec:
            if set(spec) - {"choices", "log"} or spec.get("log"):
                raise ConfigError(f"config invalid value at '{at}': choices and a range given together")
            continue
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"config invalid value at '{at}': needs choices, or low and high")
        if spec["low"] > spec["high"]:
            raise ConfigError(f"config invalid value at '{at}': low {spec['low']} > high {spec['high']}")
        if spec.get("log") and spec["low"] <= 0:
            raise ConfigError(f"config invalid value at '{at}': a log range needs low > 0")


def is_int(spec: dict) -> bool:
    return all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))


def suggest(trial, space: dict) -> dict[str, Any]:
    """One point of ``space`` from an Optuna trial, in a fixed (sorted) order."""
    out = {}
    for name in sorted(space):
        spec = space[name]
        if "choices" in spec:
            out[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif is_int(spec):
            step = int(spec.get("step") or 1)
            out[name] = trial.suggest_int(name, spec["low"], spec["high"], step=step, log=bool(spec.get("log")))
        else:
            out[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                            step=spec.get("step"), log=bool(spec.get("log")))
    return out

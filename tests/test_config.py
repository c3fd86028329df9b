"""Schema validation: unknown or ill-typed keys are rejected, naming the key."""
import pytest
import yaml

from cel.config import ConfigError, load_config, validate
from conftest import tiny_profile


def test_valid_profile_gets_defaults(tmp_path):
    cfg = validate(tiny_profile(tmp_path))
    assert cfg["train"]["patience"] == 0          # filled from the schema default
    assert cfg["models"]["nmf"]["reg"] == 1.0
    assert cfg["tables"] == ["table7"]


@pytest.mark.parametrize("mutate, key", [
    (lambda p: p.update(resluts_dir="x"), "resluts_dir"),
    (lambda p: p["train"].update(stesp=3), "train.stesp"),
    (lambda p: p["train"].update(steps="many"), "train.steps"),
    (lambda p: p["train"].update(lr=-1.0), "train.lr"),
    (lambda p: p["train"].update(optimizer="sgdx"), "train.optimizer"),
    (lambda p: p["datasets"]["synth"].update(users="ten"), "datasets.synth.users"),
    (lambda p: p["datasets"]["synth"].update(kind="ml-20m"), "datasets.synth.kind"),
    (lambda p: p["variants"].update(v={"kind": "dense", "treshold": 3}), "variants.v.treshold"),
    (lambda p: p["grid"][0].update(methods=["nope"]), "grid.0.methods"),
    (lambda p: p["grid"][0].update(datasets=["ml-100k"]), "grid.0.datasets"),
    (lambda p: p["methods"].update(full={"buckets": 3}), "methods.full.buckets"),
    (lambda p: p["models"].update(nmf={"rank": 1.5}), "models.nmf.rank"),
])
def test_bad_config_names_the_key(tmp_path, mutate, key):
    prof = tiny_profile(tmp_path)
    mutate(prof)
    with pytest.raises(ConfigError) as exc:
        validate(prof)
    assert f"'{key}'" in str(exc.value)


def test_load_config_types_and_runs(profile_path):
    cfg = load_config(profile_path())
    runs = cfg.runs()
    assert [r.key for r in runs] == ["regression/synth/original/nmf/full/cr100/f0/s0"]
    assert cfg.train.steps == 60 and cfg.train.lr == 0.002
    assert cfg.model("nmf").rank == 6


def test_fold_outside_split_rejected(profile_path, tmp_path):
    prof = yaml.safe_load(profile_path().read_text())
    prof["grid"][0]["folds"] = [7]
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(prof))
    with pytest.raises(ConfigError, match="fold 7"):
        load_config(p).runs()


def test_only_datasets_filters_and_checks(profile_path):
    p = profile_path()
    assert load_config(p, overrides={"only_datasets": "synth"}).runs()
    with pytest.raises(ConfigError, match="only_datasets"):
        load_config(p, overrides={"only_datasets": "ml-1m"})


def test_cli_reports_config_error(profile_path, tmp_path, capsys):
    from cel.cli import main

    prof = yaml.safe_load(profile_path().read_text())
    prof["train"]["lr"] = "fast"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(prof))
    assert main(["validate", str(p)]) == 2
    assert "'train.lr'" in capsys.readouterr().err


def test_shipped_profiles_validate():
    from conftest import REPO

    from cel.tables import TABLES

    shipped = sorted(p.name for p in (REPO / "config").glob("*.yaml"))
    assert {"config.yaml", "quick.yaml", "smoke.yaml", "paper.yaml", "lite_stream.yaml"} <= set(shipped)
    for name in shipped:
        cfg = load_config(REPO / "config" / name)
        assert cfg.runs(), name
        assert set(cfg.raw["tables"]) <= set(TABLES), name      # every table a profile names exists

"""Config: every option of every group composes and validates; params.yaml is fresh; dvc.yaml
stages declare params sections that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from falsereject.core.compose import compose
from falsereject.core.config import ConfigError, validate

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "experiment")
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_groups_exist():
    assert {"model", "llm", "seeds"} <= set(GROUPS)
    assert {"default", "smoke"} <= set(EXPERIMENTS)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)]
)
def test_every_group_option_composes_and_validates(group, option):
    data = yaml.safe_load(compose([f"{group}={option}"]))
    assert data[group]["name"] == option


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    data = yaml.safe_load(compose([f"experiment={experiment}"]))
    assert data["experiment"]["name"] == experiment


@pytest.mark.parametrize("group", GROUPS)
def test_options_of_a_group_share_keys_and_name_their_file(group):
    keysets = {}
    for opt in options(group):
        raw = yaml.safe_load((CONF / group / f"{opt}.yaml").read_text())
        assert raw["name"] == opt, f"conf/{group}/{opt}.yaml: name must be {opt!r}"
        keysets[opt] = set(raw)
    first = next(iter(keysets.values()))
    for opt, keys in keysets.items():
        assert keys == first, f"conf/{group}/{opt}.yaml keys differ: {keys ^ first}"


def test_committed_params_yaml_is_a_fresh_composition():
    assert (ROOT / "params.yaml").read_text(encoding="utf-8") == compose([]), (
        "params.yaml is stale: run `make compose`"
    )


def test_unknown_key_fails_naming_it():
    with pytest.raises(Exception, match="no_such_knob"):
        compose(["run.no_such_knob=1"])


def test_unknown_group_option_fails_listing_choices():
    with pytest.raises(Exception, match="smollm2"):
        compose(["model=does_not_exist"])


def test_wrong_type_fails_naming_key():
    with pytest.raises(ConfigError, match=r"run\.seed"):
        compose(["run.seed=not_a_number"])


def test_extra_key_in_a_group_is_rejected():
    data = yaml.safe_load(compose([]))
    data["model"]["surprise"] = 1
    with pytest.raises(ConfigError, match=r"model\.surprise"):
        validate(data)


def test_dvc_stages_declare_existing_params_sections():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, st in dvc["stages"].items():
        for entry in st.get("params", []):
            keys = entry if isinstance(entry, str) else None
            if keys is None:  # {file: [keys]}
                continue
            top = keys.split(".")[0]
            assert top in params, f"stage {name} declares params {keys!r} missing in params.yaml"


def test_sft_length_is_epochs_unless_max_steps_is_set():
    assert validate(yaml.safe_load(compose([]))).sft.epochs == 2
    both = validate(yaml.safe_load(compose(["sft.max_steps=200"])))
    assert both.sft.max_steps == 200 and both.sft.epochs == 2  # max_steps wins in training
    with pytest.raises(ConfigError, match=r"sft.*epochs.*max_steps"):
        compose(["sft.epochs=null"])

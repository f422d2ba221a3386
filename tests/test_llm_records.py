"""The search's records and configs: Candidate <-> result.json, and one source of defaults per llm config."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rewards.llm.search.client import OpenAIChatClient
from rewards.llm.search.offline import OfflineConfig, OfflineProposer
from rewards.llm.search.proposers import OfflineSearchProposer, make_proposer
from rewards.llm.search.records import Candidate, TrainingStats, read_json, write_json
from rewards.llm.search.synthesize import synthesize  # noqa: F401 - registers the llm config schemas
from rewards.llm.search.transcript import ReplayClient

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

#: result.json records as the search wrote them before Candidate existed: trained, failed in training,
#: failed before training (no code)
TRAINED = {"iteration": 1, "index": 0, "name": "iter01_cand00", "code": "def compute_reward(s, a, n): ...\n",
           "cand_dir": "/runs/x/iter_01/cand_00", "wall_s": 12.5, "status": "ok", "stage": "done", "error": None,
           "fitness": 0.625, "stats": {"success": [[1024, 0.25], [2048, 0.625]], "metric": [[1024, 0.25], [2048, 0.625]],
                                       "episode_length": [[1024, 20.0]], "components": {"goal": [[1024, 0.1, 0.0, 1.0]]}},
           "run_dir": "/runs/x/iter_01/cand_00/train"}
TRAIN_FAILED = {"iteration": 0, "index": 2, "name": "iter00_cand02", "code": "x = 1\n", "cand_dir": "/runs/x/iter_00/cand_02",
                "wall_s": 0.2, "status": "failed", "stage": "train", "error": "training timed out", "fitness": None}
NO_CODE = {"iteration": 0, "index": 3, "name": "iter00_cand03", "code": None, "cand_dir": "/runs/x/iter_00/cand_03",
           "status": "failed", "stage": "extract", "error": "reply has no fenced python code block", "fitness": None}


@pytest.mark.parametrize("record", [TRAINED, TRAIN_FAILED, NO_CODE], ids=["trained", "train_failed", "no_code"])
def test_candidate_round_trips_the_result_json_format(record, tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(record, indent=2))
    cand = Candidate.from_dict(read_json(path))
    assert cand.to_dict() == record
    write_json(tmp_path / "again.json", cand.to_dict())
    assert read_json(tmp_path / "again.json") == record
    assert Candidate.from_dict(cand.to_dict()) == cand


def test_candidate_fields():
    cand = Candidate.from_dict(TRAINED)
    assert cand.ok and isinstance(cand.stats, TrainingStats) and cand.stats.components["goal"] == [[1024, 0.1, 0.0, 1.0]]
    assert len(cand.code_hash) == 10 and cand.public() == {"name": "iter01_cand00", "iteration": 1, "index": 0,
                                                          "fitness": 0.625, "cand_dir": "/runs/x/iter_01/cand_00"}
    failed = Candidate.from_dict(TRAIN_FAILED)
    assert not failed.ok and failed.error_line() == "training timed out" and failed.stats is None
    assert Candidate.from_dict({**TRAINED, "gif": "/p.gif"}).gif == "/p.gif"


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose(config_name="synthesize", overrides=list(overrides))


def test_offline_yaml_takes_its_defaults_from_the_dataclass(tmp_path):
    raw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "llm" / "offline.yaml"))
    fields = {f.name: f.default for f in dataclasses.fields(OfflineConfig)}
    repeated = {k: v for k, v in raw.items() if k in fields and v == fields[k]}
    assert not repeated, f"offline.yaml repeats defaults of OfflineConfig: {repeated}"
    assert set(raw) <= {"defaults", "name"} | set(fields)

    cfg = _compose("llm=offline")
    assert OfflineProposer.from_config(cfg.llm).config == OfflineConfig()
    proposer = make_proposer(cfg.llm, tmp_path)
    assert isinstance(proposer, OfflineSearchProposer) and proposer.inner.config == OfflineConfig()
    # every setting can still be overridden on the command line
    assert make_proposer(_compose("llm=offline", "llm.seed=3", "llm.max_terms=2").llm, tmp_path).inner.config == \
        OfflineConfig(seed=3, max_terms=2)
    assert OfflineProposer(seed=3).config == OfflineConfig(seed=3)


def _keyword_defaults(fn) -> dict:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("name, cls", [("openai", OpenAIChatClient), ("replay", ReplayClient)])
def test_chat_yamls_agree_with_the_constructor_defaults(name, cls):
    raw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "llm" / f"{name}.yaml"))
    defaults = _keyword_defaults(cls.__init__)
    disagree = {k: (v, defaults[k]) for k, v in raw.items() if k in defaults and v != defaults[k]}
    assert not disagree, f"{name}.yaml and {cls.__name__} disagree (yaml, constructor): {disagree}"

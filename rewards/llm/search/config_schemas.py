"""Defaults of the ``llm`` config group that come from a dataclass, registered with Hydra.

``configs/llm/offline.yaml`` lists ``offline_schema`` first in its defaults and then sets only what
differs, so each setting of the offline proposer has one default: its field in
:class:`~rewards.llm.search.offline.OfflineConfig`. (``openai.yaml`` and ``replay.yaml`` are complete
plain files, loadable without Hydra; a test checks that they agree with the keyword defaults of
:class:`~rewards.llm.search.client.OpenAIChatClient` and
:class:`~rewards.llm.search.transcript.ReplayClient`.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from rewards.llm.search.offline import OfflineConfig
from rlcore.config import ConfigError, TrainConfig


@dataclass
class SearchConfig:
    """``search.*`` of ``python -m rewards.llm.search.synthesize``."""

    fitness: str = "auto"              # auto (success rate for MiniGrid, env return otherwise) | success | return
    select_last: int = 3               # fitness = mean of the last this-many evaluations of a run
    reeval_seeds: int = 3              # fresh seeds for the final comparison of the best reward with the baselines
    baselines: bool = True             # env reward and task metric as reward, same seeds and budget
    target_success: float = 0.8        # the report's "frames to success" threshold
    workers: int = 2                   # candidates trained at once (processes)
    candidate_timeout_s: float = 900   # wall-clock limit of one training run
    validate_timeout_s: float = 60     # wall-clock limit of the sandboxed validation of one candidate
    isolation: str = "auto"            # auto | bwrap | off: OS isolation of the processes that run reward code
    # resource limits of each training worker (rlimits, null: none); see docs/llm_sandbox.md, "5. OS isolation"
    worker_memory_mb: Optional[int] = 8192  # address space (RLIMIT_AS) of the worker, torch included; not on cuda
    worker_cpu_s: Optional[int] = None  # CPU seconds of the worker; null: 2 x candidate_timeout_s x its torch threads
    worker_file_mb: Optional[int] = 1024  # largest file the worker may write (checkpoints, progress.csv)
    reward_call_timeout_s: Optional[float] = 60  # wall-clock limit of one call of the reward code in training
    reward_routing: str = "replace"    # RewardRouting of CodeReward: replace (the candidate's reward replaces the env's) | add
    feedback: str = "none"             # none | terminal | <text file read after each iteration> (Text2Reward)
    preference: str = "off"            # off | simulated (teacher ranks by the task metric) | terminal (a person ranks GIFs)
    templates_dir: Optional[str] = None  # a folder with your own copies of rewards/llm/search/prompts/*.txt


def search_setting(search: Any, key: str) -> Any:
    """``search.<key>`` of a search config (a ``DictConfig`` or :class:`SearchConfig`), or the
    :class:`SearchConfig` default where the config lacks the key (one written before it existed)."""
    default = getattr(SearchConfig(), key)
    return search.get(key, default) if hasattr(search, "get") else getattr(search, key, default)


def check_worker_limits(search: Any) -> None:
    """Raise :class:`~rlcore.config.ConfigError` naming the key for a worker limit of ``search``
    (:class:`SearchConfig` or its ``DictConfig``) that is neither null nor in range:
    ``worker_memory_mb``, ``worker_cpu_s`` and ``worker_file_mb`` are integers >= 1;
    ``reward_call_timeout_s`` and ``candidate_timeout_s`` are numbers > 0."""
    null_means = {"worker_memory_mb": "no limit", "worker_cpu_s": "derived from candidate_timeout_s",
                  "worker_file_mb": "no limit"}
    for key, meaning in null_means.items():
        value = search_setting(search, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"search.{key} must be null ({meaning}) or an integer >= 1, got {value!r}")
    for key, none_ok in (("reward_call_timeout_s", True), ("candidate_timeout_s", False)):
        value = search_setting(search, key)
        if value is None and none_ok:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            allowed = "null (no limit) or a number of seconds > 0" if none_ok else "a number of seconds > 0"
            raise ConfigError(f"search.{key} must be {allowed}, got {value!r}")


@dataclass
class SynthesizeConfig(TrainConfig):
    """The reward search's config: the training app's (for every candidate's run) plus the search's."""

    llm: Any = None
    task: Optional[str] = None         # the task in words; default: written from the env (its mission / success rule)
    iterations: int = 3                # Eureka's default: 5
    candidates: int = 4                # per iteration; Eureka's default: 16
    run_dir: str = "runs/synthesize/${sanitize:${env.id}}-${llm.name}-seed${seed}"
    search: SearchConfig = field(default_factory=SearchConfig)


def llm_schemas() -> dict[str, dict[str, Any]]:
    """Node name (in group ``llm``) -> the full default ``llm`` config it stands for."""
    return {"offline_schema": {"name": "offline", **dataclasses.asdict(OfflineConfig())}}


def register_llm_schemas() -> None:
    """Store :func:`llm_schemas` in Hydra's config store, group ``llm`` (idempotent)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="synthesize_schema", node=SynthesizeConfig)
    for name, node in llm_schemas().items():
        store.store(group="llm", name=name, node=node)

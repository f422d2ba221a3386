"""Reward search app: ``python -m rewards.llm.search.synthesize [Hydra overrides]``.

Examples::

    python -m rewards.llm.search.synthesize env.id=MiniGrid-DoorKey-8x8-v0 llm=offline iterations=3 candidates=4
    python -m rewards.llm.search.synthesize llm=openai llm.base_url=http://127.0.0.1:8000/v1 llm.model=qwen2.5-coder
    python -m rewards.llm.search.synthesize llm=replay llm.transcript=runs/synthesize/<run>/transcript.jsonl
    python -m rewards.llm.search.synthesize ... resume=true        # continue a stopped search

The run directory (``run_dir``, default ``runs/synthesize/<env>-<llm>-seed<seed>``) holds
``config.yaml``, ``env_context.json``, per iteration ``iter_NN/replies.json`` and per candidate
``iter_NN/cand_KK/{reply.md, code.py, validation.json, result.json, train/}``, the transcript of
model requests (``transcript.jsonl``), ``best_reward.py``, the final comparison under ``final/``,
``summary.json`` and ``report.md``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import rlcore.train  # noqa: F401 - registers the ${sanitize:} resolver used by the configs
from rewards.llm.search.config_schemas import register_llm_schemas
from rewards.llm.search.loop import RewardSearch
from rewards.llm.search.proposers import make_proposer
from rewards.llm.search.records import write_json
from rlcore.make_env import make_env
from rlcore.train import resolve_device

register_llm_schemas()  # the defaults of configs/llm/*.yaml come from the proposers' own dataclasses / signatures


def synthesize(cfg: DictConfig, run_dir: Path, **search_kwargs: Any) -> dict[str, Any]:
    """Run (or resume, with ``resume=true``) the reward search described by ``cfg`` in ``run_dir``."""

    run_dir = Path(run_dir).resolve()
    if run_dir.exists() and any(run_dir.glob("iter_*")) and not cfg.resume:
        if not cfg.overwrite:
            raise FileExistsError(f"{run_dir} already holds a search; pass resume=true to continue it, "
                                  "overwrite=true to start over, or another run_dir")
        for child in run_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    # API keys are read from the environment by the client and never appear in the config
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    device = resolve_device(str(cfg.device))
    proposer = make_proposer(cfg.llm, run_dir, cfg.search.templates_dir)
    search = RewardSearch(cfg, run_dir, proposer, lambda: make_env(cfg.env, device, seed=int(cfg.seed), num_envs=8),
                          **search_kwargs)
    summary = search.run()
    usage = proposer.usage() if hasattr(proposer, "usage") else {}
    if usage:
        summary["llm_usage"] = usage
        write_json(run_dir / "summary.json", summary)
    return summary


def _hydra_main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from rewards.llm.search.loop import PreflightError

    @hydra.main(version_base=None, config_path="../../../configs", config_name="synthesize")
    def _main(cfg: DictConfig) -> None:
        try:
            summary = synthesize(cfg, Path(HydraConfig.get().runtime.output_dir))
        except PreflightError as err:
            # the loop already logged the short line; the full text is in the report
            raise SystemExit(f"stopped before the first iteration; see {err.report}") from None
        best = summary.get("best")
        print(f"\nrun dir: {summary['run_dir']}")
        print(f"report:  {summary.get('report')}")
        if best:
            print(f"best reward: {best['name']} (fitness {best['fitness']:.3f}) -> {Path(summary['run_dir']) / 'best_reward.py'}")
        for arm, data in (summary.get("final") or {}).get("arms", {}).items():
            fm = data.get("fitness_mean")
            print(f"  final {arm:12s} fitness {fm:.3f}" if fm is not None else f"  final {arm:12s} (no finished run)")

    _main()


if __name__ == "__main__":
    _hydra_main()

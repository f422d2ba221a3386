import math

import pytest
import torch

import envs.minigrid as mg
from rlcore.diagnostics import VisitationTracker, supports_visitation


def _drive(env, tracker, action, steps):
    for _ in range(steps):
        env.step(torch.full((env.num_envs,), action, dtype=torch.long))
        tracker.on_step()


def test_visit_counts_follow_the_agent(tmp_path):
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0)
    env.reset(seed=0)
    assert supports_visitation(env)
    tracker = VisitationTracker(env)
    _drive(env, tracker, 2, 3)  # forward x3 from (1, 1) facing right: (2, 1), (3, 1), blocked at (3, 1)
    assert tracker.counts[1, 2] == 2 and tracker.counts[1, 3] == 4 and tracker.counts.sum() == 6
    metrics = {}
    tracker.on_rollout_end(metrics)
    assert metrics["explore/cells_ever_visited"] == pytest.approx(2 / 9)
    assert math.isnan(metrics["explore/episode_cells_visited"])  # no episode ended yet
    png = tracker.save_heatmap(tmp_path / "visits.png")
    assert png.stat().st_size > 1000


def test_episode_fraction_of_cells_visited():
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=3, seed=0)
    env.reset(seed=0)
    tracker = VisitationTracker(env)
    _drive(env, tracker, 0, env.max_steps)  # turning in place until the time limit
    metrics = {}
    tracker.on_rollout_end(metrics)
    assert metrics["explore/episode_cells_visited"] == pytest.approx(1 / 9)  # one of 9 free cells


def test_train_app_writes_visitation_heatmap(compose_cfg, tmp_path):
    from rlcore.train import train

    summary = train(compose_cfg("env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "algo.params.n_steps=16",
                                "eval.num_episodes=4", "progress_bar=false", "total_timesteps=256"), tmp_path)
    assert summary["visitation_heatmap"].endswith("visitation.png")
    assert "explore/cells_ever_visited" in (tmp_path / "progress.csv").read_text().splitlines()[0]

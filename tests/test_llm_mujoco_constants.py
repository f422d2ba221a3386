"""Reward code that builds tensor constants runs on MuJoCo in a fresh process (torch's C++ code
imports torch.storage through the reward code's guarded __import__)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco")
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import torch
from rlcore.batch import TransitionBatch
from rlcore.config import compose_config
from rlcore.make_env import make_env
from rewards.llm.reward_module import CodeReward

cfg = compose_config("train", ["env=mujoco", "env.num_envs=2", "env.vectorization=sync"])
env = make_env(cfg.env, torch.device("cpu"), seed=0)
code = ("def compute_reward(state, action, next_state):\n"
        "    w = torch.tensor([1000.0, 0.0, 0.0], device=action.device)\n"
        "    r = next_state['qvel'][:, 0] * w[0] * 0.001\n"
        "    return r, {'forward': r}\n")
module = CodeReward(env.single_observation_space, env.single_action_space, code=code)
env.record_final_state = True
obs, _ = env.reset(seed=0)
state = env.get_state()
action = torch.zeros(2, *env.single_action_space.shape)
_, reward, terminated, truncated, info = env.step(action)
batch = TransitionBatch(obs=obs, action=action, reward=reward, next_obs=info["final_obs"], terminated=terminated,
                        truncated=truncated, state=state, next_state=info["final_state"])
out = module.compute(batch)
assert out.shape == (2,) and bool(torch.isfinite(out).all())
print("ok")
"""


def test_tensor_constant_in_reward_code_on_halfcheetah_fresh_process():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]

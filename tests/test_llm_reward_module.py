"""Reward code as a reward module: CodeReward inside native PPO, and the task-metric baseline."""

import pytest
import torch

import envs.minigrid as mg
from algorithms.ppo import PPO
from rewards.llm.reward_module import CodeReward, TaskMetricReward
from rlcore.batch import TransitionBatch
from rlcore.reward import route_reward

GOAL_CODE = '''
import torch

def compute_reward(state, action, next_state):
    d = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    near = -0.01 * d
    turn = (action == 0).float() * -0.001
    return near + turn, {"near": near, "turn": turn}
'''


def _env():
    return mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0)


def test_code_reward_replaces_the_env_reward_in_ppo_and_reports_components():
    env = _env()
    module = CodeReward(env.single_observation_space, env.single_action_space, code=GOAL_CODE)
    seen = []
    original = module.compute

    def spy(batch):
        out = original(batch)
        # the rollout storage is reused across iterations: check against the batch as it is now
        expected = -0.01 * (batch.next_state["agent_pos"] - batch.next_state["goal_pos"]).abs().sum(-1).float() \
            - 0.001 * (batch.action == 0).float()
        seen.append((batch.state["agent_pos"].shape, out.shape, bool(torch.allclose(out, expected))))
        return out

    module.compute = spy
    log = []
    PPO(env, n_steps=16, n_epochs=1, n_minibatches=2, seed=0, reward_module=module).learn(
        2 * 16 * 4, callback=lambda m, model: log.append(m))
    assert seen and all(s == (torch.Size([16, 4, 2]), torch.Size([16, 4]), True) for s in seen)
    assert {"reward/component/near/mean", "reward/component/near/min", "reward/component/turn/max"} <= set(log[-1])
    assert log[-1]["reward/component/near/max"] <= 0.0


def test_code_reward_add_mode_and_bad_arguments(tmp_path):
    env = _env()
    path = tmp_path / "r.py"
    path.write_text(GOAL_CODE)
    module = CodeReward(env.single_observation_space, env.single_action_space, code_path=str(path), routing="add")
    n = 3
    state = {"agent_pos": torch.tensor([[1, 1], [2, 3], [3, 3]]), "goal_pos": torch.tensor([[3, 3]] * n)}
    batch = TransitionBatch(obs=torch.zeros(n, 1), action=torch.tensor([0, 1, 2]), reward=torch.tensor([0.0, 0.0, 0.9]),
                            next_obs=torch.zeros(n, 1), terminated=torch.tensor([False, False, True]),
                            truncated=torch.zeros(n, dtype=torch.bool), state=state, next_state=state)
    # the program's reward plus the env's, now added by the learner through the shared routing helper
    assert torch.allclose(route_reward(module.routing, batch.reward, module.compute(batch)), torch.tensor([-0.041, -0.01, 0.9]))
    assert torch.allclose(module.compute(batch), torch.tensor([-0.041, -0.01, 0.0]))  # compute: the program's alone
    with pytest.raises(ValueError, match="exactly one of code= or code_path="):
        CodeReward(env.single_observation_space, env.single_action_space)
    with pytest.raises(ValueError, match="mode"):
        CodeReward(env.single_observation_space, env.single_action_space, code=GOAL_CODE, routing="mix")
    with pytest.raises(ValueError, match="privileged state"):
        module.compute(TransitionBatch(obs=batch.obs, action=batch.action, reward=batch.reward, next_obs=batch.next_obs,
                                       terminated=batch.terminated, truncated=batch.truncated))


def test_code_reward_refuses_hostile_code():
    from rewards.llm.sandbox import RewardCodeError

    env = _env()
    with pytest.raises(RewardCodeError, match="os"):
        CodeReward(env.single_observation_space, env.single_action_space, code="import os\n" + GOAL_CODE)


def test_task_metric_reward_is_one_exactly_on_successful_episode_ends():
    env = _env()
    module = TaskMetricReward(env.single_observation_space, env.single_action_space)
    batch = TransitionBatch(obs=torch.zeros(4, 1), action=torch.zeros(4, dtype=torch.long),
                            reward=torch.tensor([0.0, 0.7, 0.0, 0.5]), next_obs=torch.zeros(4, 1),
                            terminated=torch.tensor([True, True, False, False]),
                            truncated=torch.tensor([False, False, True, False]))
    assert torch.equal(module.compute(batch), torch.tensor([0.0, 1.0, 0.0, 0.0]))


def test_training_workers_get_an_environment_without_secrets():
    from rewards.llm.search.worker import scrubbed_environ

    env = scrubbed_environ({"OPENAI_API_KEY": "x", "HF_TOKEN": "y", "MY_SETTING": "sk-abcdefghijklmnopqrstuvwx",
                            "PATH": "/usr/bin", "HOME": "/home/u"})
    assert "OPENAI_API_KEY" not in env and "HF_TOKEN" not in env and "MY_SETTING" not in env
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u"

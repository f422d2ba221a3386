# expect: contained
# attack: NaN and inf rewards poison the learner
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    reward = torch.where(dist > 2, float("nan"), float("inf"))
    return reward, {"dist": dist}

# expect: refused
# attack: torch.jit.script called as a function (not the inert decorator)
import torch


def helper(x):
    return x


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    scripted = torch.jit.script(helper)
    return reward, {"dist": dist}

# expect: refused
# attack: torch.compile starts the compiler stack (codegen, subprocesses)
import torch


def helper(x):
    return x


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    fast = torch.compile(helper)
    return reward, {"dist": dist}

# expect: refused
# attack: torch.load reached through an alias (import torch as th)
import torch
import torch as th


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    secret = th.load("/etc/passwd")
    return reward, {"dist": dist}

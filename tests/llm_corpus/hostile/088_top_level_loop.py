# expect: refused
# attack: an endless loop at the top level (runs when the module loads)
import torch

while True:
    pass


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}

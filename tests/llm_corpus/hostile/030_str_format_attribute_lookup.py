# expect: refused
# attack: '{0.__class__}'.format(x) performs attribute lookups inside the string
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    leak = "{0.__class__.__mro__}".format(action)
    return reward, {"dist": dist}

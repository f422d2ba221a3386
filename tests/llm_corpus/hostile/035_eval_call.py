# expect: refused
# attack: eval of a string built at run time
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    x = eval("1 + 1")
    return reward, {"dist": dist}

# expect: refused
# attack: import time and sleep in a helper's default argument (runs when the module loads)
import time
import torch


def helper(x=time.sleep(60)):
    return x


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}

# expect: contained
# attack: a helper default argument that computes for ever (runs when the module loads)
import torch


def burn():
    n = 0
    while True:
        n += 1


def helper(x=burn()):
    return x


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}

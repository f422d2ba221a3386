# expect: contained
# attack: while True: pass inside compute_reward (the CPU limit stops it)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    while True:
        pass
    return reward, {"dist": dist}

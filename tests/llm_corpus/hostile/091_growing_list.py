# expect: contained
# attack: a list that grows until memory runs out
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    chunks = []
    while True:
        chunks.append([0] * 10000000)
    return reward, {"dist": dist}

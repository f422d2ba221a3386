# expect: contained
# attack: 3000 components flood the logs and the reflection prompt
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {f"c{i}": dist for i in range(3000)}

# expect: contained
# attack: state['agent_pos'][0] = 0 writes to the rollout's state
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    state["agent_pos"][0] = 0
    return reward, {"dist": dist}

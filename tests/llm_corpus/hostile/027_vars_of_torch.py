# expect: refused
# attack: vars(torch)['load'] hides the name in a string
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    loader = vars(torch)["load"]
    return reward, {"dist": dist}

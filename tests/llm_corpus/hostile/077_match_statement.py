# expect: refused
# attack: a match statement (class patterns call __match_args__)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    match dist.shape[0]:
        case 0:
            reward = reward * 0
    return reward, {"dist": dist}

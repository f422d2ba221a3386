# expect: refused
# attack: typing used as a value: typing.get_type_hints evaluates annotations
import typing
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    hints = typing.get_type_hints(compute_reward)
    return reward, {"dist": dist}

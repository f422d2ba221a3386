# env: MiniGrid-DoorKey-8x8-v0
"""Staged DoorKey shaping: get the key, open the door, then head for the goal."""
import torch

KEY, OPEN = 5, 0
STAGE_WEIGHTS = (0.5, 0.5, 1.0)


def manhattan(a, b):
    return (a - b).abs().sum(-1).float()


def compute_reward(state, action, next_state):
    has_key = (next_state["carrying"][:, 0] == KEY).float()
    picked_key = has_key * (state["carrying"][:, 0] != KEY).float()
    door_open = (next_state["door_state"] == OPEN).float()
    opened = door_open * (state["door_state"] != OPEN).float()

    key_dist = manhattan(next_state["agent_pos"], next_state["door_pos"])
    goal_dist = manhattan(next_state["agent_pos"], next_state["goal_pos"])
    # before the door is open, approach the door; afterwards, the goal
    target_dist = torch.where(door_open > 0, goal_dist, key_dist)
    approach = torch.exp(-target_dist / 4.0)

    w_key, w_door, w_goal = STAGE_WEIGHTS
    reward = w_key * picked_key + w_door * opened + 0.05 * w_goal * approach
    return reward, {"picked_key": picked_key, "opened": opened, "approach": approach}

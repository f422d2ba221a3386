# env: MiniGrid-UnlockPickup-v0
"""Look at the cell in front of the agent: reward useful toggles and pickups, and unlocking the door."""
import torch

DOOR, KEY, BOX = 4, 5, 7
PICKUP, TOGGLE = 3, 5
LOCKED, OPEN = 2, 0


def front_object(grid, pos, direction):
    """Object type of the cell in front of the agent (grid is [N, H, W, 3], indexed [n, y, x])."""
    steps = torch.tensor([[1, 0], [0, 1], [-1, 0], [0, -1]], device=pos.device)
    front = pos + steps[direction]
    n, h, w, _ = grid.shape
    x = front[:, 0].clamp(0, w - 1)
    y = front[:, 1].clamp(0, h - 1)
    rows = torch.arange(n, device=grid.device)
    return grid[rows, y, x, 0].long()


def compute_reward(state, action, next_state):
    ahead = front_object(state["grid"], state["agent_pos"], state["agent_dir"])
    toggle_door = ((action == TOGGLE) & (ahead == DOOR)).float()
    pickup_useful = ((action == PICKUP) & ((ahead == KEY) | (ahead == BOX))).float()
    unlocked = ((state["door_state"] == LOCKED) & (next_state["door_state"] == OPEN)).float()
    got_box = (next_state["carrying"][:, 0] == BOX).float() * (state["carrying"][:, 0] != BOX).float()

    step_frac = next_state["step_count"].float() / 288.0
    time_penalty = -0.01 * step_frac.clamp(max=1.0)

    reward = 0.05 * (toggle_door + pickup_useful) + 0.5 * unlocked + got_box + time_penalty
    return reward, {"toggle_door": toggle_door, "pickup_useful": pickup_useful, "unlocked": unlocked,
                    "got_box": got_box, "time_penalty": time_penalty}

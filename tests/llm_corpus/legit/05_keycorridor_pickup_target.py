# env: MiniGrid-KeyCorridorS3R1-v0
"""Pick up the target object; discourage dropping things and idle actions."""
import torch
import torch.nn.functional as F

NUM_ACTIONS = 7
ACTION_COSTS = (0.0, 0.0, 0.0, 0.0, 0.02, 0.0, 0.01)  # drop and done cost a little


def compute_reward(state, action, next_state):
    holding_target = (next_state["carrying"] == next_state["target"]).all(dim=-1).float()
    was_holding = (state["carrying"] == state["target"]).all(dim=-1).float()
    picked_target = (holding_target - was_holding).clamp(min=0.0)

    empty_before = state["carrying"][:, 0] == 1
    picked_other = ((next_state["carrying"][:, 0] != 1) & empty_before).float() * (1.0 - holding_target)

    costs = torch.tensor(ACTION_COSTS, device=action.device)
    onehot = F.one_hot(action.long(), NUM_ACTIONS).float()
    action_cost = (onehot * costs).sum(-1)

    reward = picked_target + 0.1 * picked_other - action_cost
    return reward, {"picked_target": picked_target, "picked_other": picked_other, "action_cost": action_cost}

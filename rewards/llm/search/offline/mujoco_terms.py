"""MuJoCo reward terms (root velocity, effort, height, uprightness, alive, joint velocity) and their substitution values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewards.llm.context import EnvContext
from rewards.llm.search.offline.terms import CTRL_COST, TermDef


def joint_dofs(facts: Mapping[str, Any]) -> list[int]:
    """qvel indices of the non-root joints."""
    return [i for i, lab in enumerate(facts.get("qvel_labels") or []) if lab and not lab.get("root")]


def mujoco_terms(ctx: EnvContext) -> list[TermDef]:
    f = ctx.facts
    keys = set(ctx.state_keys)
    terms: list[TermDef] = []
    if "qvel" in keys:
        terms.append(TermDef("forward_velocity", 1.0, "velocity of the root along +x (m/s)", lambda env: [
            "t_forward_velocity = next_state['qvel'][:, $x_vel].to(torch.float32)"], mandatory=True))
    if f.get("action_dim"):
        terms.append(CTRL_COST)
    if "root_z_pos" in f and "init_height" in f and "qpos" in keys:
        terms.append(TermDef("height", 1.0, "minus the squared deviation of the root height from its start value",
                             lambda env: [
                                 "t_height = -(next_state['qpos'][:, $z_pos].to(torch.float32) - $init_height) ** 2"]))
    if "root_pitch_pos" in f and "qpos" in keys:
        terms.append(TermDef("upright", 0.5, "minus the squared pitch of the root (rad^2)", lambda env: [
            "t_upright = -next_state['qpos'][:, $pitch_pos].to(torch.float32) ** 2"]))
    elif "root_quat_pos" in f and "qpos" in keys:
        terms.append(TermDef("upright", 0.5, "minus the tilt of the root (1 - cos of the angle to vertical)",
                             lambda env: [
                                 "quat = next_state['qpos'][:, $quat_pos:$quat_pos + 4].to(torch.float32)",
                                 "quat = quat / quat.norm(dim=-1, keepdim=True).clamp(min=1e-8)",
                                 "t_upright = -2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)",
                             ]))
    if f.get("terminates"):
        terms.append(TermDef("alive", 1.0, "1 per step while the episode runs (the env ends on falling)",
                             lambda env: ["t_alive = torch.ones(action.shape[0], device=action.device)"]))
    if joint_dofs(f) and "qvel" in keys:
        terms.append(TermDef("joint_velocity", 0.001, "minus the mean squared joint velocity", lambda env: [
            "t_joint_velocity = -(next_state['qvel'][:, $joint_from:].to(torch.float32) ** 2).mean(-1)"]))
    return terms


def mujoco_env(ctx: EnvContext, options: Mapping[str, Any]) -> dict[str, Any]:
    f = ctx.facts
    dofs = joint_dofs(f)
    return {
        "x_vel": int(f.get("root_x_vel", 0)),
        "z_pos": int(f.get("root_z_pos", 0)),
        "init_height": repr(float(f.get("init_height", 0.0))),
        "pitch_pos": int(f.get("root_pitch_pos", 0)),
        "quat_pos": int(f.get("root_quat_pos", 0)),
        "joint_from": dofs[0] if dofs else 0,
    }

"""Integer encodings of MiniGrid objects, identical to Farama MiniGrid's ``core.constants``.

A cell is a triple ``(object type, colour, state)`` of small integers. Empty floor is
``(EMPTY, 0, 0)`` exactly as Farama's ``Grid.encode`` writes an empty cell, and an empty hand
(``carrying``) uses the same triple, so the carried object can be copied into the observation as is.
"""

from __future__ import annotations

import torch

from rlcore.spec import SymbolicGrid

# object types (Farama OBJECT_TO_IDX)
UNSEEN, EMPTY, WALL, FLOOR, DOOR, KEY, BALL, BOX, GOAL, LAVA, AGENT = range(11)
OBJECT_NAMES = ("unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")

# colours (Farama COLOR_TO_IDX)
RED, GREEN, BLUE, PURPLE, YELLOW, GREY = range(6)
COLOR_NAMES = ("red", "green", "blue", "purple", "yellow", "grey")
#: Farama's ``COLOR_NAMES`` is ``sorted(COLORS)``; random colours are drawn from that order.
SORTED_COLOR_NAMES = tuple(sorted(COLOR_NAMES))
SORTED_COLOR_IDX = tuple(COLOR_NAMES.index(c) for c in SORTED_COLOR_NAMES)

# door states (Farama STATE_TO_IDX)
OPEN, CLOSED, LOCKED = 0, 1, 2
STATE_NAMES = ("open", "closed", "locked")

# actions (Farama minigrid.core.actions.Actions)
LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
#: what each action does, ``"name: meaning"`` in code order (``TaskInfo.action_meanings``)
ACTION_MEANINGS = (
    "left: turn left (counter-clockwise)",
    "right: turn right (clockwise)",
    "forward: move one cell in the facing direction (blocked by walls, closed doors and objects)",
    "pickup: pick up the object in front (keys, balls, boxes) if the hand is empty",
    "drop: drop the carried object onto the empty cell in front",
    "toggle: open/close the door in front (a locked door needs a carried key of its colour), open a box",
    "done: no-op",
)

#: direction index -> (dx, dy); 0 = right (+x), 1 = down (+y), 2 = left, 3 = up
DIR_TO_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))
DIR_NAMES = ("right (+x)", "down (+y)", "left (-x)", "up (-y)")

#: object types the agent cannot step onto (a door only while not open); lava is walkable and ends
#: the episode, goal and floor are walkable
BLOCKING = (WALL, DOOR, KEY, BALL, BOX)

#: the vocabulary above as the library's generic symbolic-grid description (see ``rlcore.spec``)
SYMBOLIC_GRID = SymbolicGrid(objects=OBJECT_NAMES, colors=COLOR_NAMES, states=STATE_NAMES, wall=WALL,
                             blocking=BLOCKING, open_state=OPEN)

EMPTY_CELL = (EMPTY, 0, 0)
WALL_CELL = (WALL, GREY, 0)
GOAL_CELL = (GOAL, GREEN, 0)
LAVA_CELL = (LAVA, RED, 0)


def cell_tensor(triple, device) -> torch.Tensor:
    return torch.tensor(triple, dtype=torch.uint8, device=device)

"""The bouncing ball's model: a state, a pure step, and the changes clients may ask for.

Nothing here touches the network, a clock or a random number: the simulation is a pure
function of the state and the time step, so it is tested on its own::

    state = BallState()
    state = step(state, 1 / 60)             # one tick later
    state = apply_control(state, {"type": "ball.control", "paused": True})

Positions are in unit coordinates: 0..1 across and down a square field.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..wire.protocol import ProtocolError, number_field

__all__ = [
    "MAX_KICK",
    "MAX_SPEED",
    "RADIUS_RANGE",
    "BallState",
    "apply_control",
    "apply_event",
    "apply_kick",
    "state_event",
    "step",
]

MAX_SPEED = 3.0  # field widths per second
MAX_KICK = 2.0  # the largest change of vx or vy one kick may make
RADIUS_RANGE = (0.01, 0.25)
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class BallState:
    """Everything about the ball at one tick."""

    tick: int = 0
    x: float = 0.5
    y: float = 0.5
    vx: float = 0.37
    vy: float = 0.23
    radius: float = 0.05
    color: str = "#e4572e"
    paused: bool = False

    @property
    def speed(self) -> float:
        """Length of the velocity, in field widths per second."""
        return math.hypot(self.vx, self.vy)


def step(state: BallState, dt: float) -> BallState:
    """The state one tick of ``dt`` seconds later: move, and bounce off the walls."""
    if state.paused:
        return replace(state, tick=state.tick + 1)
    x, vx = _bounce(state.x + state.vx * dt, state.vx, state.radius)
    y, vy = _bounce(state.y + state.vy * dt, state.vy, state.radius)
    return replace(state, tick=state.tick + 1, x=x, y=y, vx=vx, vy=vy)


def _bounce(position: float, velocity: float, radius: float) -> tuple[float, float]:
    # Reflect off a wall the ball passed during the step, so it never leaves the field.
    low, high = radius, 1.0 - radius
    if position < low:
        return min(2 * low - position, high), abs(velocity)
    if position > high:
        return max(2 * high - position, low), -abs(velocity)
    return position, velocity


def apply_control(state: BallState, event: dict[str, Any]) -> BallState:
    """Apply a ``ball.control`` event (any of speed, radius, color, paused); validate first.

    Raises :class:`ProtocolError` and changes nothing if any field is wrong.
    """
    changes: dict[str, Any] = {}
    fields = set(event) - {"type"}
    unknown = fields - {"speed", "radius", "color", "paused"}
    if unknown:
        raise ProtocolError(
            "bad_field",
            f"ball.control has no field {sorted(unknown)[0]!r}; "
            "it takes speed, radius, color, paused",
        )
    if not fields:
        raise ProtocolError("bad_value", "ball.control needs speed, radius, color or paused")
    if "speed" in event:
        speed = number_field(event, "speed", 0.0, MAX_SPEED)
        # Keep the direction; a ball at rest starts along the diagonal. A ball slower than
        # 1e-9 counts as at rest: dividing by a tiny speed overflows to inf (then NaN), and
        # NaN is not JSON (found by tests/test_protocol_properties.py).
        current = state.speed
        if current > 1e-9:
            vx, vy = state.vx / current * speed, state.vy / current * speed
        else:
            vx = vy = speed / math.sqrt(2)
        changes.update(vx=vx, vy=vy)
    if "radius" in event:
        changes["radius"] = number_field(event, "radius", *RADIUS_RANGE)
    if "color" in event:
        color = event["color"]
        if not isinstance(color, str) or not _COLOR.fullmatch(color):
            raise ProtocolError("bad_value", 'color must be "#rrggbb", for example "#1f77b4"')
        changes["color"] = color.lower()
    if "paused" in event:
        if not isinstance(event["paused"], bool):
            raise ProtocolError("bad_value", "paused must be true or false")
        changes["paused"] = event["paused"]
    updated = replace(state, **changes)
    # A larger radius must not leave the ball inside a wall.
    r = updated.radius
    return replace(updated, x=min(max(updated.x, r), 1 - r), y=min(max(updated.y, r), 1 - r))


def apply_kick(state: BallState, event: dict[str, Any]) -> BallState:
    """Apply a ``ball.kick`` event: add ``dx``, ``dy`` to the velocity (speed capped)."""
    dx = number_field(event, "dx", -MAX_KICK, MAX_KICK)
    dy = number_field(event, "dy", -MAX_KICK, MAX_KICK)
    vx, vy = state.vx + dx, state.vy + dy
    speed = math.hypot(vx, vy)
    if speed > MAX_SPEED:
        vx, vy = vx * MAX_SPEED / speed, vy * MAX_SPEED / speed
    return replace(state, vx=vx, vy=vy)


def apply_event(state: BallState, event: dict[str, Any]) -> BallState:
    """Apply a ``ball.control`` or (any other type) a ``ball.kick`` event."""
    apply = apply_control if event.get("type") == "ball.control" else apply_kick
    return apply(state, event)


def state_event(state: BallState, ts: float) -> dict[str, Any]:
    """The ``ball.state`` event for ``state``, stamped with the server's clock ``ts``."""
    return {"type": "ball.state", **asdict(state), "ts": ts}

import json
import math

from websockets.asyncio.client import connect

from workshop_lib.checks.ball import q2


def clamp(value, limit=2.0):
    return max(-limit, min(limit, value))


async def steer_to_corner(url):
    """Steer the ball into the bottom-right corner, then pause it there."""
    async with connect(url) as websocket:
        async for message in websocket:
            ball = json.loads(message)
            if ball["type"] != "ball.state":
                continue  # an error event, for instance
            corner = 1 - ball["radius"]  # the centre can come no closer to the wall
            dx, dy = corner - ball["x"], corner - ball["y"]
            if abs(dx) < 0.02 and abs(dy) < 0.02:
                await websocket.send(json.dumps({"type": "ball.control", "paused": True}))
                return
            # Head for the corner at 0.3 field widths a second: kick by the difference
            # between the velocity we want and the one the ball has.
            distance = math.hypot(dx, dy)
            want_vx, want_vy = 0.3 * dx / distance, 0.3 * dy / distance
            kick = {"type": "ball.kick", "dx": clamp(want_vx - ball["vx"]),
                    "dy": clamp(want_vy - ball["vy"])}
            await websocket.send(json.dumps(kick))


q2.check(steer_to_corner)

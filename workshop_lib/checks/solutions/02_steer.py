import json
import math

from websockets.asyncio.client import connect

from workshop_lib.checks.ball import q2


def clamp(value, limit=2.0):
    """value, kept within -limit..limit: the largest kick the server takes."""
    return max(-limit, min(limit, value))


async def steer_to_corner(url):
    """Steer the ball into the bottom-right corner, then pause it there."""
    async with connect(url) as websocket:
        async for message in websocket:
            ball = json.loads(message)
            if ball["type"] != "ball.state":
                continue  # an error event, for instance
            corner = 1 - ball["radius"]  # the bottom-right corner, for the centre
            gap_x, gap_y = corner - ball["x"], corner - ball["y"]  # how far it still has to go
            if abs(gap_x) < 0.02 and abs(gap_y) < 0.02:
                await websocket.send(json.dumps({"type": "ball.control", "paused": True}))
                return
            # The velocity that heads for the corner at 0.3 field widths a second:
            distance = math.hypot(gap_x, gap_y)
            want_vx, want_vy = 0.3 * gap_x / distance, 0.3 * gap_y / distance
            # A kick adds to the velocity: kick by the velocity wanted minus the one it has.
            kick = {"type": "ball.kick", "dx": clamp(want_vx - ball["vx"]),
                    "dy": clamp(want_vy - ball["vy"])}
            await websocket.send(json.dumps(kick))


q2.check(steer_to_corner)

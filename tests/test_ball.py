"""The ball's model and the event parser, apart from any network."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from workshop_lib.ball.model import (
    MAX_SPEED,
    BallState,
    apply_control,
    apply_kick,
    state_event,
    step,
)
from workshop_lib.wire.protocol import ProtocolError, parse_event

DT = 1 / 60


def test_step_moves_by_velocity_times_dt():
    state = BallState(x=0.5, y=0.5, vx=0.6, vy=-0.3)
    after = step(state, DT)
    assert after.tick == 1
    assert after.x == pytest.approx(0.5 + 0.6 * DT)
    assert after.y == pytest.approx(0.5 - 0.3 * DT)


@pytest.mark.parametrize(
    ("x", "vx", "expected_x", "expected_vx"),
    [
        (0.94, 1.2, 0.95 - (0.94 + 1.2 * DT - 0.95), -1.2),  # right wall (radius 0.05)
        (0.06, -1.2, 0.05 + (0.05 - (0.06 - 1.2 * DT)), 1.2),  # left wall
    ],
)
def test_step_bounces_off_walls_at_the_balls_edge(x, vx, expected_x, expected_vx):
    after = step(BallState(x=x, vx=vx, vy=0.0, radius=0.05), DT)
    assert after.x == pytest.approx(expected_x)
    assert after.vx == expected_vx


@pytest.mark.parametrize("speed", [0.1, 1.0, MAX_SPEED])
@pytest.mark.parametrize("radius", [0.01, 0.05, 0.25])
def test_the_ball_never_leaves_the_field(speed, radius):
    state = BallState(radius=radius, vx=speed * math.cos(0.7), vy=speed * math.sin(0.7))
    for _ in range(5000):
        state = step(state, DT)
        assert radius <= state.x <= 1 - radius
        assert radius <= state.y <= 1 - radius
    assert state.speed == pytest.approx(speed)  # bounces keep the speed


def test_paused_ball_does_not_move_but_ticks_go_on():
    state = BallState(paused=True)
    after = step(step(state, DT), DT)
    assert (after.x, after.y, after.tick) == (state.x, state.y, 2)


def test_control_changes_what_it_names():
    state = BallState(vx=0.3, vy=0.4)  # speed 0.5
    after = apply_control(state, {"type": "ball.control", "speed": 1.0, "color": "#00FF00"})
    assert after.speed == pytest.approx(1.0)
    assert after.vx / after.vy == pytest.approx(0.75)  # same direction
    assert after.color == "#00ff00"
    assert apply_control(state, {"type": "ball.control", "paused": True}).paused


def test_speed_from_rest_starts_along_the_diagonal():
    after = apply_control(BallState(vx=0, vy=0), {"type": "ball.control", "speed": 1.0})
    assert after.speed == pytest.approx(1.0) and after.vx == pytest.approx(after.vy)


def test_a_larger_radius_pushes_the_ball_out_of_the_wall():
    state = BallState(x=0.02, y=0.99, radius=0.01)
    after = apply_control(state, {"type": "ball.control", "radius": 0.2})
    assert (after.x, after.y) == (0.2, 0.8)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"speed": 3.5}, "bad_value"),
        ({"speed": -1}, "bad_value"),
        ({"speed": True}, "bad_value"),
        ({"speed": "fast"}, "bad_value"),
        ({"speed": float("nan")}, "bad_value"),
        ({"radius": 0.5}, "bad_value"),
        ({"color": "red"}, "bad_value"),
        ({"color": "#12345g"}, "bad_value"),
        ({"paused": "yes"}, "bad_value"),
        ({"spin": 1}, "bad_field"),
        ({}, "bad_value"),
        ({"radius": 0.1, "speed": 99}, "bad_value"),  # one bad field: nothing changes
    ],
)
def test_invalid_controls_change_nothing(event, code):
    state = BallState()
    with pytest.raises(ProtocolError) as error:
        apply_control(state, {"type": "ball.control", **event})
    assert error.value.code == code
    assert error.value.message  # something a person can read
    assert state == BallState()


def test_kick_adds_velocity_and_speed_is_capped():
    state = BallState(vx=0.1, vy=0.1)
    kicked = apply_kick(state, {"type": "ball.kick", "dx": 0.5, "dy": -0.2})
    assert (kicked.vx, kicked.vy) == pytest.approx((0.6, -0.1))
    fast = BallState(vx=2.5, vy=0.0)
    assert apply_kick(fast, {"type": "ball.kick", "dx": 2.0, "dy": 2.0}).speed == pytest.approx(
        MAX_SPEED
    )


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"dx": 3, "dy": 0}, "bad_value"),
        ({"dx": 0}, "missing_field"),
        ({"dx": "1", "dy": 0}, "bad_value"),
    ],
)
def test_invalid_kicks_are_refused(event, code):
    with pytest.raises(ProtocolError) as error:
        apply_kick(BallState(), {"type": "ball.kick", **event})
    assert error.value.code == code


def test_state_event_has_exactly_the_protocol_fields():
    event = state_event(replace(BallState(), tick=7), ts=1.5)
    assert set(event) == {"type", "tick", "x", "y", "vx", "vy", "radius", "color", "paused", "ts"}
    assert event["type"] == "ball.state" and event["tick"] == 7 and event["ts"] == 1.5


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"\x00", "binary_not_supported"),
        ("{nope", "bad_json"),
        ("[1, 2]", "not_an_object"),
        ('"ball.kick"', "not_an_object"),
        ('{"type": "ball.teleport"}', "unknown_type"),
        ('{"kind": "ball.kick"}', "unknown_type"),
    ],
)
def test_parse_event_names_what_is_wrong(message, code):
    with pytest.raises(ProtocolError) as error:
        parse_event(message, {"ball.kick"})
    assert error.value.code == code
    assert f'"code":"{code}"' in error.value.event()

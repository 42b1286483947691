"""Schedules against their closed forms, eagerly, under jit, and inside an optimizer."""

import math

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import optim

STEPS = [0, 1, 2, 5, 9, 10, 11, 25, 100]


def cosine(t, init, T, alpha=0.0, exponent=1.0):
    t = min(t, T)
    return init * ((1 - alpha) * (0.5 * (1 + math.cos(math.pi * t / T))) ** exponent + alpha)


CLOSED_FORMS = {
    "constant": (optim.constant_schedule(0.3), lambda t: 0.3),
    "linear": (optim.linear_schedule(1.0, 0.1, 10, transition_begin=2),
               lambda t: 1.0 + (0.1 - 1.0) * min(max(t - 2, 0), 10) / 10),
    "exponential": (optim.exponential_decay(2.0, 5, 0.5),
                    lambda t: 2.0 * 0.5 ** (t / 5)),
    "exponential_staircase_begin_end": (
        optim.exponential_decay(2.0, 5, 0.5, transition_begin=3, staircase=True,
                                end_value=0.2),
        lambda t: max(2.0 * 0.5 ** (max(t - 3, 0) // 5), 0.2)),
    "cosine": (optim.cosine_decay_schedule(1.0, 10, alpha=0.1),
               lambda t: cosine(t, 1.0, 10, alpha=0.1)),
    "cosine_exponent": (optim.cosine_decay_schedule(1.0, 10, exponent=2.0),
                        lambda t: cosine(t, 1.0, 10, exponent=2.0)),
    "warmup_cosine": (
        optim.warmup_cosine_decay_schedule(0.1, 1.0, warmup_steps=5, decay_steps=25,
                                           end_value=0.01),
        lambda t: 0.1 + 0.9 * t / 5 if t < 5 else cosine(t - 5, 1.0, 20, alpha=0.01)),
    "piecewise": (optim.piecewise_constant_schedule(1.0, {2: 0.5, 10: 0.1}),
                  lambda t: 1.0 * (0.5 if t >= 2 else 1) * (0.1 if t >= 10 else 1)),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_schedule_matches_closed_form(x64, name):
    schedule, expected = CLOSED_FORMS[name]
    jitted = fl.jit(schedule)
    for t in STEPS:
        np.testing.assert_allclose(float(schedule(t)), expected(t), rtol=1e-12,
                                   err_msg=f"step {t}")
        np.testing.assert_allclose(float(jitted(fnp.asarray(t, dtype=fnp.int32))),
                                   expected(t), rtol=1e-12, err_msg=f"jit, step {t}")
    assert jitted.trace_count == 1


def test_schedule_is_asked_at_the_optimizer_step_count():
    asked = []
    opt = optim.sgd(lambda t: asked.append(int(t)) or 1.0)
    params = fnp.zeros(1)
    state = opt.init(params)
    for _ in range(3):
        _, state = opt.update(fnp.ones(1), state, params)
    assert asked == [0, 1, 2] and int(state.count) == 3


def test_warmup_cosine_learning_rates_inside_sgd():
    # With g = 1 and no momentum, each update is -lr(t): the schedule itself.
    schedule = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=6)
    opt = optim.sgd(schedule)
    params = fnp.zeros(1)
    state = opt.init(params)
    lrs = []
    for _ in range(8):
        updates, state = opt.update(fnp.ones(1), state, params)
        lrs.append(-float(updates[0]))
    np.testing.assert_allclose(lrs, [float(schedule(t)) for t in range(8)], rtol=1e-6)
    np.testing.assert_allclose(lrs[:3], [0.0, 0.5, 1.0], atol=1e-7)
    assert lrs[-1] == 0.0


def test_schedule_values_are_float32_by_default():
    assert optim.cosine_decay_schedule(1.0, 10)(3).dtype == np.float32
    assert optim.piecewise_constant_schedule(1.0, {1: 0.5})(3).dtype == np.float32

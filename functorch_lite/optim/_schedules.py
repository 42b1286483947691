"""Schedules: functions ``step -> value``, usable wherever a learning rate is accepted.

The names, arguments and formulas are Optax's. A schedule is called with the step count
an optimizer keeps in its state (an int32 array: 0 on the first update), so it must be
traceable: it is written with ``fnp`` and never branches in Python on the step. Called
with a Python int it returns a 0-d array of the default float dtype (float32, or float64
under ``fl.config.enable_x64()``).
"""

from __future__ import annotations

from collections.abc import Callable

from functorch_lite import numpy as fnp
from functorch_lite.config import default_float_dtype
from functorch_lite.optim._base import check_range

__all__ = ["constant_schedule", "linear_schedule", "exponential_decay",
           "cosine_decay_schedule", "warmup_cosine_decay_schedule",
           "piecewise_constant_schedule", "join_schedules"]


def _float_step(count):
    return fnp.asarray(count).astype(default_float_dtype())


def _floats(fn_name: str, **values) -> list[float]:
    """The values as Python floats (weakly typed in the schedule's arithmetic)."""
    out = []
    for name, value in values.items():
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            raise TypeError(f"{fn_name}: {name} must be a number, got {value!r:.60}") from None
    return out


def _check_steps(fn_name: str, name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{fn_name}: {name} must be an int >= {minimum}, got {value!r}")


def constant_schedule(value: float) -> Callable:
    """The schedule that returns ``value`` at every step.

    Example:
        >>> from functorch_lite import optim
        >>> optim.constant_schedule(0.1)(1000)
        Array(0.1, dtype=float32)
    """
    def schedule(count):
        return fnp.full((), value, dtype=default_float_dtype())

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Callable:
    """Linear from ``init_value`` to ``end_value`` over ``transition_steps`` steps.

    ``init_value`` until step ``transition_begin``, then a straight line reaching
    ``end_value`` at ``transition_begin + transition_steps``, then ``end_value``.
    Same as ``torch.optim.lr_scheduler.LinearLR`` (whose factors multiply a base lr).

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.linear_schedule(1.0, 0.0, transition_steps=4)
        >>> [round(float(sched(t)), 2) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    _check_steps("linear_schedule", "transition_steps", transition_steps, 1)
    init_value, end_value = _floats("linear_schedule", init_value=init_value,
                                    end_value=end_value)
    _check_steps("linear_schedule", "transition_begin", transition_begin, 0)

    def schedule(count):
        t = fnp.clip(_float_step(count) - transition_begin, 0, transition_steps)
        return init_value + (end_value - init_value) * (t / transition_steps)

    return schedule


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Callable:
    """``init_value * decay_rate ** ((step - transition_begin) / transition_steps)``.

    Before ``transition_begin`` the value is ``init_value``. With ``staircase=True`` the
    exponent is floored (the value drops every ``transition_steps`` steps, like
    ``torch.optim.lr_scheduler.StepLR``; ``transition_steps=1`` is ``ExponentialLR``).
    ``end_value`` bounds the decay (a floor when ``decay_rate < 1``, else a ceiling).

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.exponential_decay(1.0, transition_steps=2, decay_rate=0.5)
        >>> [float(sched(t)) for t in (0, 2, 4)]
        [1.0, 0.5, 0.25]
    """
    _check_steps("exponential_decay", "transition_steps", transition_steps, 1)
    _check_steps("exponential_decay", "transition_begin", transition_begin, 0)
    decay_rate = check_range("exponential_decay", "decay_rate", decay_rate, 0.0)
    (init_value,) = _floats("exponential_decay", init_value=init_value)
    if end_value is not None:
        (end_value,) = _floats("exponential_decay", end_value=end_value)

    def schedule(count):
        t = fnp.maximum(_float_step(count) - transition_begin, 0)
        exponent = t / transition_steps
        if staircase:
            exponent = fnp.floor(exponent)
        value = init_value * fnp.power(fnp.asarray(decay_rate, exponent.dtype), exponent)
        if end_value is not None:
            value = (fnp.maximum if decay_rate < 1 else fnp.minimum)(value, end_value)
        return value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Callable:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    ``value(t) = init_value * ((1 - alpha) * c(t) ** exponent + alpha)`` with
    ``c(t) = (1 + cos(pi * min(t, decay_steps) / decay_steps)) / 2``. With ``exponent=1``
    this is ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=decay_steps,
    eta_min=alpha * lr)`` for ``t <= decay_steps`` (after that, this one stays at the floor).

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.cosine_decay_schedule(1.0, decay_steps=4)
        >>> [round(float(sched(t)), 3) for t in (0, 2, 4, 10)]
        [1.0, 0.5, 0.0, 0.0]
    """
    _check_steps("cosine_decay_schedule", "decay_steps", decay_steps, 1)
    init_value, alpha, exponent = _floats("cosine_decay_schedule", init_value=init_value,
                                          alpha=alpha, exponent=exponent)

    def schedule(count):
        t = fnp.minimum(_float_step(count), decay_steps)
        cosine = 0.5 * (1 + fnp.cos(fnp.pi * t / decay_steps))
        if exponent != 1:
            cosine = cosine ** exponent
        return init_value * ((1 - alpha) * cosine + alpha)

    return schedule


def join_schedules(schedules: list[Callable], boundaries: list[int]) -> Callable:
    """Run ``schedules[i]`` from ``boundaries[i-1]`` on, restarting its step count at 0.

    Args:
        schedules: ``n`` schedules.
        boundaries: ``n - 1`` increasing steps at which the next schedule takes over.

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.join_schedules(
        ...     [optim.constant_schedule(1.0), optim.linear_schedule(1.0, 0.0, 2)], [3])
        >>> [float(sched(t)) for t in range(6)]
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    if len(boundaries) != len(schedules) - 1 or list(boundaries) != sorted(boundaries):
        raise ValueError(
            f"join_schedules: expected {len(schedules) - 1} increasing boundaries for "
            f"{len(schedules)} schedules, got {list(boundaries)}")

    def schedule(count):
        count = fnp.asarray(count)
        value = schedules[0](count)
        for boundary, later in zip(boundaries, schedules[1:]):
            value = fnp.where(count >= boundary, later(count - boundary), value)
        return value

    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0,
                                 exponent: float = 1.0) -> Callable:
    """Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` counts the warmup too (Optax's convention): the value reaches
    ``peak_value`` at step ``warmup_steps`` and ``end_value`` at step ``decay_steps``.

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2,
        ...                                            decay_steps=6)
        >>> [round(float(sched(t)), 3) for t in range(8)]
        [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
    """
    _check_steps("warmup_cosine_decay_schedule", "warmup_steps", warmup_steps, 0)
    init_value, peak_value, end_value = _floats(
        "warmup_cosine_decay_schedule", init_value=init_value, peak_value=peak_value,
        end_value=end_value)
    if not isinstance(decay_steps, int) or decay_steps <= warmup_steps:
        raise ValueError(
            f"warmup_cosine_decay_schedule: decay_steps (the total, warmup included) must "
            f"be an int > warmup_steps={warmup_steps}, got {decay_steps!r}")
    if peak_value == 0:
        raise ValueError("warmup_cosine_decay_schedule: peak_value must not be 0 (the "
                         "cosine part decays from it to end_value as a fraction of it)")
    cosine = cosine_decay_schedule(peak_value, decay_steps - warmup_steps,
                                   alpha=end_value / peak_value, exponent=exponent)
    if warmup_steps == 0:
        return cosine
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps), cosine],
                          [warmup_steps])


def piecewise_constant_schedule(init_value: float,
                                boundaries_and_scales: dict[int, float] | None = None
                                ) -> Callable:
    """``init_value`` times the product of every scale whose boundary step has been reached.

    Args:
        init_value: the value before the first boundary.
        boundaries_and_scales: ``{step: scale}``; from ``step`` on (``t >= step``) the value
            is multiplied by ``scale``. Like ``torch.optim.lr_scheduler.MultiStepLR`` with
            one ``gamma`` per milestone.

    Example:
        >>> from functorch_lite import optim
        >>> sched = optim.piecewise_constant_schedule(1.0, {2: 0.1, 4: 0.5})
        >>> [round(float(sched(t)), 3) for t in range(6)]
        [1.0, 1.0, 0.1, 0.1, 0.05, 0.05]
    """
    (init_value,) = _floats("piecewise_constant_schedule", init_value=init_value)
    items = []
    for step, scale in sorted((boundaries_and_scales or {}).items()):
        _check_steps("piecewise_constant_schedule", "each boundary", step, 0)
        items.append((step, check_range("piecewise_constant_schedule",
                                        f"the scale at step {step}", scale, 0.0)))

    def schedule(count):
        t = fnp.asarray(count)
        value = fnp.full((), init_value, dtype=default_float_dtype())
        for step, scale in items:
            value = fnp.where(t >= step, value * scale, value)
        return value

    return schedule

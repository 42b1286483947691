"""The building blocks optimizers are chained from: ``scale_by_*``, ``trace``, clipping,
weight decay.

Formulas follow PyTorch's ``torch.optim`` where PyTorch and Optax differ (eps outside the
square root in RMSprop and Adagrad; momentum applied before the learning rate), so a
training script ported from PyTorch gives the same numbers. Each transform's docstring
states its formula; ``g`` is the incoming update (the gradient at the head of a chain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite import tree as tree_util
from functorch_lite.optim._base import (
    EmptyState,
    GradientTransformation,
    OptimizerValueError,
    as_dtype,
    check_float_leaves,
    check_learning_rate,
    check_range,
    increment,
    initial_count,
    make_transform,
    map_leaves,
    named,
    zeros_state,
)
from functorch_lite.optim._masking import masked

__all__ = ["scale", "scale_by_schedule", "scale_by_learning_rate", "trace",
           "scale_by_adam", "scale_by_rms", "scale_by_adagrad", "scale_by_lion", "clip",
           "clip_by_global_norm", "add_decayed_weights", "ScaleByScheduleState",
           "TraceState", "ScaleByAdamState", "ScaleByRmsState", "ScaleByAdagradState",
           "ScaleByLionState"]


def _bias_correction(decay: float, count) -> Any:
    """``1 - decay ** count`` as a float64 scalar (cast to each leaf's dtype where used),
    so float16 leaves do not lose the correction to rounding in its own arithmetic."""
    return 1 - decay ** count.astype(np.float64)


def _stateless(name: str, leaf_fn: Callable) -> GradientTransformation:
    def update(grads, state, params=None, **extra_args):
        return map_leaves(f"{name}.update", leaf_fn, grads), state

    return make_transform(name, lambda params: EmptyState(), update)


# --------------------------------------------------------------------------------------
# Scaling and learning rates
# --------------------------------------------------------------------------------------
def scale(step_size: float) -> GradientTransformation:
    """``g * step_size``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> optim.scale(-2.0).update(fnp.array([1.0, 3.0]), optim.EmptyState())[0]
        Array([-2., -6.], dtype=float32)
    """
    step_size = check_range("scale", "step_size", step_size, float("-inf"))
    return _stateless("scale", lambda g: g * step_size)


class ScaleByScheduleState(NamedTuple):
    """``count``: int32, the number of updates so far (the step the schedule is asked at)."""

    count: Any


def scale_by_schedule(step_size_fn: Callable) -> GradientTransformation:
    """``g * step_size_fn(count)``, where ``count`` (0 on the first update) is in the state.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_schedule(lambda step: 1.0 / (step + 1))
        >>> state = opt.init(fnp.zeros(1))
        >>> for _ in range(3):
        ...     u, state = opt.update(fnp.ones(1), state)
        >>> u, state.count
        (Array([0.33333334], dtype=float32), Array(3, dtype=int32))
    """
    if not callable(step_size_fn):
        raise TypeError(f"scale_by_schedule: step_size_fn must be a callable step -> value, "
                        f"got {type(step_size_fn).__name__}")

    def init(params):
        return ScaleByScheduleState(initial_count())

    def update(grads, state, params=None, **extra_args):
        step_size, cache = step_size_fn(state.count), {}
        updates = map_leaves("scale_by_schedule.update",
                             lambda g: g * as_dtype(step_size, g.dtype, cache), grads)
        return updates, ScaleByScheduleState(increment(state.count))

    return make_transform("scale_by_schedule", init, update)


def scale_by_learning_rate(learning_rate, *, flip_sign: bool = True) -> GradientTransformation:
    """``-learning_rate * g`` (a descent step); ``learning_rate`` may be a schedule.

    Args:
        learning_rate: a non-negative float, or a schedule ``step -> lr`` (the step count
            is kept in this transform's state; the first update asks for step 0).
        flip_sign: negate (the default: optimizers minimize).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_learning_rate(0.1)
        >>> opt.update(fnp.array([1.0]), opt.init(fnp.zeros(1)))[0]
        Array([-0.1], dtype=float32)
    """
    check_learning_rate("scale_by_learning_rate", learning_rate)
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * float(learning_rate))


# --------------------------------------------------------------------------------------
# Momentum and adaptive scalings
# --------------------------------------------------------------------------------------
class TraceState(NamedTuple):
    """``trace``: the momentum buffer, a tree like the params."""

    trace: Any


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``t = decay * t + g``; the update is ``t`` (or ``g + decay * t`` with
    ``nesterov=True``). ``t`` starts at zero, so the first update is ``g`` (PyTorch's
    ``SGD(momentum=decay, dampening=0)``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.trace(0.5)
        >>> state = opt.init(fnp.zeros(1))
        >>> u, state = opt.update(fnp.ones(1), state)
        >>> u, state = opt.update(fnp.ones(1), state)
        >>> u
        Array([1.5], dtype=float32)
    """
    decay = check_range("trace", "decay", decay, 0.0, 1.0)

    def init(params):
        return TraceState(zeros_state("trace.init", params))

    def leaf(g, t):
        t = decay * t + g
        return (g + decay * t if nesterov else t), t

    def update(grads, state, params=None, **extra_args):
        updates, new_trace = map_leaves("trace.update", leaf, grads, state.trace,
                                        names=("optimizer state (trace)",), num_outputs=2)
        return updates, TraceState(new_trace)

    return make_transform("trace", init, update)


class ScaleByAdamState(NamedTuple):
    """``count`` (int32, updates so far), ``mu`` and ``nu`` (first and second moments)."""

    count: Any
    mu: Any
    nu: Any


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_root: float = 0.0) -> GradientTransformation:
    """Adam's direction: ``m_hat / (sqrt(v_hat + eps_root) + eps)``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)`` with ``t`` the update number (1 on the first update).
    With ``eps_root=0`` this is PyTorch's and Optax's Adam (they agree).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_adam()
        >>> opt.update(fnp.array([0.5, -2.0]), opt.init(fnp.zeros(2)))[0]  # ~ sign(g)
        Array([ 1., -1.], dtype=float32)
    """
    b1 = check_range("scale_by_adam", "b1", b1, 0.0, 1.0)
    b2 = check_range("scale_by_adam", "b2", b2, 0.0, 1.0)
    eps = check_range("scale_by_adam", "eps", eps, 0.0)
    eps_root = check_range("scale_by_adam", "eps_root", eps_root, 0.0)

    def init(params):
        mu = zeros_state("scale_by_adam.init", params)
        return ScaleByAdamState(initial_count(), mu, tree_util.map(fnp.zeros_like, mu))

    def update(grads, state, params=None, **extra_args):
        count = increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        cache1, cache2 = {}, {}

        def leaf(g, m, v):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * (g * g)
            m_hat = m / as_dtype(bc1, g.dtype, cache1)
            v_hat = v / as_dtype(bc2, g.dtype, cache2)
            root = fnp.sqrt(v_hat + eps_root if eps_root else v_hat)
            return m_hat / (root + eps), m, v

        updates, mu, nu = map_leaves(
            "scale_by_adam.update", leaf, grads, state.mu, state.nu,
            names=("optimizer state (mu)", "optimizer state (nu)"), num_outputs=3)
        return updates, ScaleByAdamState(count, mu, nu)

    return make_transform("scale_by_adam", init, update)


class ScaleByRmsState(NamedTuple):
    """``nu`` (mean of squared updates) and ``mu`` (mean of updates; zeros unless centered)."""

    nu: Any
    mu: Any


def scale_by_rms(decay: float = 0.99, eps: float = 1e-8,
                 centered: bool = False) -> GradientTransformation:
    """RMSprop's direction, with PyTorch's eps placement: ``g / (sqrt(nu) + eps)``.

    ``nu = decay nu + (1 - decay) g^2`` (starting from 0). With ``centered=True`` the
    denominator is ``sqrt(nu - mu^2) + eps`` where ``mu = decay mu + (1 - decay) g``.
    NB: Optax's ``scale_by_rms`` puts eps inside the root (``g / sqrt(nu + eps)``); the two
    agree only when eps is negligible against ``sqrt(nu)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_rms(decay=0.75)
        >>> opt.update(fnp.array([2.0]), opt.init(fnp.zeros(1)))[0]  # 2 / sqrt(0.25 * 4)
        Array([2.], dtype=float32)
    """
    decay = check_range("scale_by_rms", "decay", decay, 0.0, 1.0)
    eps = check_range("scale_by_rms", "eps", eps, 0.0)

    def init(params):
        nu = zeros_state("scale_by_rms.init", params)
        return ScaleByRmsState(nu, tree_util.map(fnp.zeros_like, nu))

    def leaf(g, nu, mu):
        nu = decay * nu + (1 - decay) * (g * g)
        if centered:
            mu = decay * mu + (1 - decay) * g
            return g / (fnp.sqrt(nu - mu * mu) + eps), nu, mu
        return g / (fnp.sqrt(nu) + eps), nu, mu

    def update(grads, state, params=None, **extra_args):
        updates, nu, mu = map_leaves(
            "scale_by_rms.update", leaf, grads, state.nu, state.mu,
            names=("optimizer state (nu)", "optimizer state (mu)"), num_outputs=3)
        return updates, ScaleByRmsState(nu, mu)

    return make_transform("scale_by_rms", init, update)


class ScaleByAdagradState(NamedTuple):
    """``sum_of_squares``: the running sum of squared updates."""

    sum_of_squares: Any


def scale_by_adagrad(initial_accumulator_value: float = 0.0,
                     eps: float = 1e-10) -> GradientTransformation:
    """Adagrad's direction, PyTorch's formula: ``g / (sqrt(s) + eps)`` with ``s += g^2``.

    NB: Optax's ``scale_by_rss`` computes ``g / sqrt(s + eps)`` and starts ``s`` at 0.1.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_adagrad()
        >>> opt.update(fnp.array([3.0, -4.0]), opt.init(fnp.zeros(2)))[0]
        Array([ 1., -1.], dtype=float32)
    """
    initial_accumulator_value = check_range(
        "scale_by_adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
    eps = check_range("scale_by_adagrad", "eps", eps, 0.0)

    def init(params):
        return ScaleByAdagradState(
            zeros_state("scale_by_adagrad.init", params, initial_accumulator_value))

    def leaf(g, s):
        s = s + g * g
        return g / (fnp.sqrt(s) + eps), s

    def update(grads, state, params=None, **extra_args):
        updates, sums = map_leaves(
            "scale_by_adagrad.update", leaf, grads, state.sum_of_squares,
            names=("optimizer state (sum_of_squares)",), num_outputs=2)
        return updates, ScaleByAdagradState(sums)

    return make_transform("scale_by_adagrad", init, update)


class ScaleByLionState(NamedTuple):
    """``mu``: the momentum (an exponential average of updates with rate ``b2``)."""

    mu: Any


def scale_by_lion(b1: float = 0.9, b2: float = 0.99) -> GradientTransformation:
    """Lion's direction (Chen et al. 2023): ``sign(b1 m + (1 - b1) g)``, then
    ``m = b2 m + (1 - b2) g``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> opt = optim.scale_by_lion()
        >>> opt.update(fnp.array([0.3, -2.0, 0.0]), opt.init(fnp.zeros(3)))[0]
        Array([ 1., -1.,  0.], dtype=float32)
    """
    b1 = check_range("scale_by_lion", "b1", b1, 0.0, 1.0)
    b2 = check_range("scale_by_lion", "b2", b2, 0.0, 1.0)

    def init(params):
        return ScaleByLionState(zeros_state("scale_by_lion.init", params))

    def leaf(g, m):
        direction = fnp.sign(b1 * m + (1 - b1) * g)
        return direction, b2 * m + (1 - b2) * g

    def update(grads, state, params=None, **extra_args):
        updates, mu = map_leaves("scale_by_lion.update", leaf, grads, state.mu,
                                 names=("optimizer state (mu)",), num_outputs=2)
        return updates, ScaleByLionState(mu)

    return make_transform("scale_by_lion", init, update)


# --------------------------------------------------------------------------------------
# Clipping and weight decay
# --------------------------------------------------------------------------------------
def clip(max_delta: float) -> GradientTransformation:
    """Clip every element to ``[-max_delta, max_delta]``
    (``torch.nn.utils.clip_grad_value_``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> optim.clip(1.0).update(fnp.array([-3.0, 0.5, 2.0]), optim.EmptyState())[0]
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    max_delta = check_range("clip", "max_delta", max_delta, 0.0)
    return _stateless("clip", lambda g: fnp.clip(g, -max_delta, max_delta))


def _squared_norm(g):
    """``sum(g^2)`` accumulated in at least float32 (float16 squares overflow at 256)."""
    if g.dtype.itemsize < 4:
        g = g.astype(np.float32)
    return fnp.sum(g * g)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so that their global L2 norm is at most ``max_norm``.

    ``g * max_norm / max(norm, max_norm)``, where ``norm`` is the L2 norm of all leaves
    as one vector (Optax's formula; ``torch.nn.utils.clip_grad_norm_`` divides by
    ``norm + 1e-6`` instead). Updates whose norm is below ``max_norm`` pass unchanged.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> clipper = optim.clip_by_global_norm(1.0)
        >>> clipper.update({"a": fnp.array([3.0]), "b": fnp.array([4.0])},
        ...                optim.EmptyState())[0]
        {'a': Array([0.6], dtype=float32), 'b': Array([0.8], dtype=float32)}
    """
    if not isinstance(max_norm, (int, float, np.number)) or not max_norm > 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be a positive number, got "
                         f"{max_norm!r}")
    max_norm = float(max_norm)

    def update(grads, state, params=None, **extra_args):
        leaves = tree_util.leaves(grads)
        check_float_leaves("clip_by_global_norm.update", leaves, grads, "grads")
        if not leaves:
            return grads, state
        squares = [_squared_norm(fnp.asarray(g)) for g in leaves]
        dtype = np.result_type(*[s.dtype for s in squares])
        norm = fnp.sqrt(sum(s.astype(dtype) if s.dtype != dtype else s for s in squares))
        factor, cache = max_norm / fnp.maximum(norm, max_norm), {}
        return map_leaves("clip_by_global_norm.update",
                          lambda g: g * as_dtype(factor, g.dtype, cache), grads), state

    return make_transform("clip_by_global_norm", lambda params: EmptyState(), update)


def add_decayed_weights(weight_decay: float, mask=None) -> GradientTransformation:
    """``g + weight_decay * params``: L2 regularisation / decoupled weight decay.

    At the head of a chain, before the optimizer (``chain(add_decayed_weights(wd),
    sgd(lr))``), this is PyTorch's ``weight_decay=wd`` argument of SGD/Adam/RMSprop
    (an L2 penalty's gradient). After an adaptive scaling and before the learning rate,
    as in :func:`adamw`, it is decoupled weight decay.

    Args:
        weight_decay: a non-negative float.
        mask: optional pytree of bools like the params (or a prefix of them), or a callable
            ``params -> mask``. **True = decayed**; False leaves pass through unchanged
            (biases and norm scales are usually left undecayed).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> params = {"w": fnp.array([10.0]), "b": fnp.array([10.0])}
        >>> grads = {"w": fnp.zeros(1), "b": fnp.zeros(1)}
        >>> opt = optim.add_decayed_weights(0.1, mask={"w": True, "b": False})
        >>> opt.update(grads, opt.init(params), params)[0]
        {'b': Array([0.], dtype=float32), 'w': Array([1.], dtype=float32)}
    """
    weight_decay = check_range("add_decayed_weights", "weight_decay", weight_decay, 0.0)

    def update(grads, state, params=None, **extra_args):
        if params is None:
            raise OptimizerValueError("add_decayed_weights.update", "weight decay needs the "
                                      "params: call opt.update(grads, state, params)")
        updates = map_leaves("add_decayed_weights.update",
                             lambda g, p: g + weight_decay * p, grads, params,
                             names=("params",))
        return updates, state

    decay = make_transform("add_decayed_weights", lambda params: EmptyState(), update)
    return decay if mask is None else named("add_decayed_weights", masked(decay, mask))

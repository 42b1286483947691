"""L-BFGS with a weak-Wolfe line search, written as pure functions of arrays.

The parameters are raveled into one vector ``x`` (``fl.tree.ravel``). The state keeps the
last ``m`` pairs ``s = x_new - x``, ``y = g_new - g`` as ``(m, n)`` arrays, newest last,
with ``rho = 1 / (s . y)``; an empty slot has ``rho = 0``, which makes it a no-op in the
two-loop recursion, so the first iterations need no Python branch on how full the memory
is. The direction is ``d = -H g`` (two-loop recursion, initial scaling
``gamma = s.y / y.y`` of the newest pair; ``min(1, 1/|g|)`` before any pair exists).

The line search is the bisection/expansion of Lewis & Overton for the weak Wolfe
conditions, as one ``fl.while_loop`` over the state ``(t, lo, hi, best point)``:

* trial step ``t`` starts at 1;
* if ``f(x + t d) > f(x) + c1 t g.d`` (not enough decrease, or NaN): ``hi = t``;
* elif ``g(x + t d).d < c2 g.d`` (still steep): ``lo = t``;
* else both conditions hold: stop;
* next ``t`` is ``(lo + hi) / 2`` once ``hi`` is finite, else ``2 lo``.

Every point that passed the decrease test is remembered as the best one (``lo``), and the
step taken is to it: after ``max_linesearch_steps`` trials without a Wolfe point the step
still decreases ``f`` if any trial did. A point meeting the curvature condition has
``s.y > 0``, which keeps ``H`` positive definite; pairs with ``s.y <= eps |y|^2`` are
not stored. Everything is ``fnp`` arithmetic and ``fl.while_loop``, so one update (and a
whole :func:`minimize`) runs under ``fl.jit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite import tree as tree_util
from functorch_lite.autodiff import value_and_grad
from functorch_lite.control_flow import while_loop
from functorch_lite.optim._base import (
    GradientTransformation,
    OptimizerTypeError,
    OptimizerValueError,
    apply_updates,
    check_float_leaves,
    flatten_like,
    increment,
    initial_count,
    make_transform,
)

__all__ = ["lbfgs", "LbfgsState", "minimize", "MinimizeInfo"]


class LbfgsState(NamedTuple):
    """The state of :func:`lbfgs`.

    Attributes:
        count: int32, updates done.
        s_history, y_history: ``(memory_size, n)`` step and gradient-change pairs,
            newest last.
        rho_history: ``(memory_size,)``, ``1 / (s . y)``; 0 marks an empty slot.
        value: ``f`` at the point the last update moved to (inf before any update).
        grad: the gradient there, a tree like the params: a loop can take ``value`` and
            ``grad`` from the state instead of evaluating ``f`` again.
        step_size: the accepted line-search step ``t`` (0: no decrease was found).
        linesearch_steps: int32, evaluations of ``f`` in the last line search.
    """

    count: Any
    s_history: Any
    y_history: Any
    rho_history: Any
    value: Any
    grad: Any
    step_size: Any
    linesearch_steps: Any


class _Search(NamedTuple):
    steps: Any
    t: Any
    lo: Any
    hi: Any
    f_lo: Any
    g_lo: Any
    done: Any


def _flat_dtype(fn_name: str, params) -> np.dtype:
    leaves = tree_util.leaves(params)
    check_float_leaves(fn_name, leaves, params, "params")
    if not leaves:
        raise OptimizerValueError(fn_name, "params has no leaves: nothing to optimize")
    return np.result_type(*[x.dtype if hasattr(x, "dtype") else np.result_type(x)
                            for x in leaves])


def _direction(g, s_hist, y_hist, rho):
    """``-H g`` by the two-loop recursion; empty slots (rho = 0) change nothing."""
    m = rho.shape[0]
    q, alphas = g, [None] * m
    for i in reversed(range(m)):
        alphas[i] = rho[i] * fnp.dot(s_hist[i], q)
        q = q - alphas[i] * y_hist[i]
    s_new, y_new = s_hist[m - 1], y_hist[m - 1]
    yy = fnp.dot(y_new, y_new)
    first = fnp.minimum(1.0, 1.0 / fnp.maximum(fnp.linalg.norm(g), np.finfo(g.dtype).tiny))
    gamma = fnp.where(rho[m - 1] > 0, fnp.dot(s_new, y_new) / fnp.where(yy > 0, yy, 1), first)
    r = gamma * q
    for i in range(m):
        beta = rho[i] * fnp.dot(y_hist[i], r)
        r = r + (alphas[i] - beta) * s_hist[i]
    d = -r
    # Rounding can make a nearly singular H give an ascent direction: fall back to -g.
    return fnp.where(fnp.dot(g, d) < 0, d, -first * g)


def _line_search(vg, x, f0, g0, d, c1, c2, max_steps):
    dg0 = fnp.dot(g0, d)
    dtype = x.dtype

    def cond(c):
        return fnp.logical_and(fnp.logical_not(c.done), c.steps < max_steps)

    def body(c):
        f_t, g_t = vg(x + c.t * d)
        f_t, g_t = f_t.astype(dtype), g_t.astype(dtype)
        decrease = f_t <= f0 + c1 * c.t * dg0           # False for NaN
        flat_enough = fnp.dot(g_t, d) >= c2 * dg0
        lo = fnp.where(decrease, c.t, c.lo)
        hi = fnp.where(decrease, c.hi, c.t)
        t = fnp.where(hi < np.inf, (lo + hi) / 2, 2 * lo)
        return _Search(c.steps + 1, t, lo, hi, fnp.where(decrease, f_t, c.f_lo),
                       fnp.where(decrease, g_t, c.g_lo), fnp.logical_and(decrease, flat_enough))

    one = fnp.ones((), dtype)
    start = _Search(fnp.zeros((), fnp.int32), one, 0 * one, fnp.full((), np.inf, dtype),
                    f0, g0, fnp.zeros((), bool))
    return while_loop(cond, body, start)


def lbfgs(memory_size: int = 10, max_linesearch_steps: int = 30, c1: float = 1e-4,
          c2: float = 0.9) -> GradientTransformation:
    """Limited-memory BFGS with a weak-Wolfe line search (full steps, no learning rate).

    Its ``update`` needs the objective: ``opt.update(grads, state, params,
    value_fn=f, value=f(params))`` (``value`` is optional: it is computed when omitted).
    The returned updates move the params to the accepted line-search point, whose value and
    gradient are stored in the state (``state.value``, ``state.grad``). For a whole
    minimization with stopping rules use :func:`minimize`.

    The line search is pure: an ``fl.while_loop`` whose carry is the bracket
    ``(t, lo, hi)`` and the best point so far. It tries ``t = 1``, halves the bracket
    after too little decrease (``f(x + t d) > f(x) + c1 t g.d``), doubles ``t`` while the
    slope is still steep (``g(x + t d).d < c2 g.d``), and stops at a point meeting both
    weak Wolfe conditions (Lewis & Overton); after ``max_linesearch_steps`` trials it takes
    the best point with enough decrease (no step if none). So an update runs under
    ``fl.jit`` with no Python branch on values.

    Args:
        memory_size: number of ``(s, y)`` pairs kept.
        max_linesearch_steps: most evaluations of ``f`` per update.
        c1: sufficient-decrease constant of the Wolfe conditions, in ``(0, c2)``.
        c2: curvature constant, in ``(c1, 1)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> f = lambda p: fnp.sum((p["x"] - 2.0) ** 2) + 10 * fnp.sum(p["y"] ** 2)
        >>> params = {"x": fnp.zeros(2), "y": fnp.ones(1)}
        >>> opt = optim.lbfgs()
        >>> state = opt.init(params)
        >>> for _ in range(5):
        ...     value, grads = fl.value_and_grad(f)(params)
        ...     updates, state = opt.update(grads, state, params, value=value, value_fn=f)
        ...     params = optim.apply_updates(params, updates)
        >>> fnp.round(params["x"], 4), fnp.round(params["y"], 4)
        (Array([2., 2.], dtype=float32), Array([0.], dtype=float32))
    """
    if not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"lbfgs: memory_size must be an int >= 1, got {memory_size!r}")
    if not isinstance(max_linesearch_steps, int) or max_linesearch_steps < 1:
        raise ValueError(f"lbfgs: max_linesearch_steps must be an int >= 1, got "
                         f"{max_linesearch_steps!r}")
    if not 0 < c1 < c2 < 1:
        raise ValueError(f"lbfgs: the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1!r}, "
                         f"c2={c2!r} (usual: c1=1e-4, c2=0.9)")

    def init(params):
        dtype = _flat_dtype("lbfgs.init", params)
        n = int(tree_util.ravel(params)[0].shape[0])
        history = fnp.zeros((memory_size, n), dtype)
        return LbfgsState(
            initial_count(), history, history, fnp.zeros((memory_size,), dtype),
            fnp.full((), np.inf, dtype), tree_util.map(fnp.zeros_like, params),
            fnp.zeros((), dtype), fnp.zeros((), fnp.int32))

    def update(grads, state, params=None, *, value_fn: Callable | None = None, value=None,
               **extra_args):
        if params is None or value_fn is None:
            raise OptimizerValueError(
                "lbfgs.update", "the line search evaluates the objective: call "
                "opt.update(grads, state, params, value_fn=f, value=f(params))")
        if not isinstance(state, LbfgsState):
            raise OptimizerTypeError("lbfgs.update", f"expected the LbfgsState from "
                                     f"lbfgs().init(params), got {type(state).__name__}")
        dtype = _flat_dtype("lbfgs.update", params)
        flatten_like("lbfgs.update", tree_util.structure(params), grads, "grads tree", "params")
        x, unravel = tree_util.ravel(params)
        g = tree_util.ravel(grads)[0].astype(dtype)
        if x.shape[0] != state.s_history.shape[1]:
            raise OptimizerValueError(
                "lbfgs.update", f"the params have {x.shape[0]} elements but the state was "
                f"built for {state.s_history.shape[1]}: call opt.init(params) again")
        f0 = fnp.asarray(value_fn(params) if value is None else value).astype(dtype)

        vg = value_and_grad(lambda flat: value_fn(unravel(flat)))
        d = _direction(g, state.s_history, state.y_history, state.rho_history)
        search = _line_search(vg, x, f0, g, d, c1, c2, max_linesearch_steps)
        s, y = search.lo * d, search.g_lo - g
        sy, yy = fnp.dot(s, y), fnp.dot(y, y)
        keep = sy > np.finfo(dtype).eps * yy

        def push(history, new):
            rolled = fnp.concatenate([history[1:], new[None]], axis=0)
            return fnp.where(keep, rolled, history)

        rho = push(state.rho_history, 1 / fnp.where(keep, sy, 1))
        # A failed search (no decrease at all) also forgets the curvature pairs, so the
        # next update starts over from a scaled gradient step.
        rho = fnp.where(search.lo > 0, rho, fnp.zeros_like(rho))
        new_state = LbfgsState(
            increment(state.count), push(state.s_history, s), push(state.y_history, y), rho,
            search.f_lo, unravel(search.g_lo), search.lo, search.steps)
        return unravel(s), new_state

    return make_transform("lbfgs", init, update)


class MinimizeInfo(NamedTuple):
    """What :func:`minimize` reports (all arrays, so it can be returned from ``fl.jit``).

    Attributes:
        converged: bool; the gradient's max-abs fell to ``gtol``, or an update decreased
            ``f`` by a relative amount of at most ``ftol``.
        iterations: int32, updates done.
        value: ``f`` at the returned params.
        grad_norm: max-abs of the gradient there.
        evaluations: int32, evaluations of ``f`` and its gradient (the line searches and
            the first one).
    """

    converged: Any
    iterations: Any
    value: Any
    grad_norm: Any
    evaluations: Any


class _Loop(NamedTuple):
    params: Any
    state: Any
    value: Any
    grads: Any
    iterations: Any
    evaluations: Any
    converged: Any
    stop: Any


def _max_abs(tree):
    return fnp.max(fnp.abs(tree_util.ravel(tree)[0]))


def minimize(fun: Callable, params: Any, method: str = "lbfgs", *, max_iters: int = 500,
             gtol: float = 1e-5, ftol: float | None = None, memory_size: int = 10,
             max_linesearch_steps: int = 30) -> tuple[Any, MinimizeInfo]:
    """Minimize a scalar function of a pytree of parameters with L-BFGS.

    Like ``scipy.optimize.minimize(method="L-BFGS-B")`` without bounds: it stops when the
    largest gradient entry is at most ``gtol``, when an update decreases ``f`` by a
    relative ``(f_old - f_new) / max(|f_old|, |f_new|, 1) <= ftol``, when the line
    search finds no decrease, or after ``max_iters`` updates. The loop is an
    ``fl.while_loop``, so ``fl.jit(lambda p: optim.minimize(f, p))`` compiles the whole
    minimization; eagerly it runs as a Python loop.

    Args:
        fun: ``params -> scalar``, differentiable with ``fl.grad``.
        params: the starting point, a pytree of float arrays.
        method: only ``"lbfgs"``.
        max_iters: most updates.
        gtol: tolerance on the gradient's max-abs.
        ftol: tolerance on the relative decrease; default ``max(2.2e-9, 10 * eps)`` of the
            params' dtype (SciPy's default in float64, ``1.2e-6`` in float32).
        memory_size, max_linesearch_steps: as in :func:`lbfgs`.

    Returns:
        ``(params, info)``: the minimizer found (same structure and dtypes) and a
        :class:`MinimizeInfo`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import optim
        >>> def rosenbrock(p):
        ...     return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
        >>> x, info = optim.minimize(rosenbrock, fnp.array([-1.2, 1.0]))
        >>> fnp.round(x, 3), bool(info.converged)
        (Array([1., 1.], dtype=float32), True)
    """
    if method != "lbfgs":
        raise ValueError(f"minimize: method must be 'lbfgs' (the only one so far), got "
                         f"{method!r}")
    if not isinstance(max_iters, int) or max_iters < 0:
        raise ValueError(f"minimize: max_iters must be an int >= 0, got {max_iters!r}")
    opt = lbfgs(memory_size, max_linesearch_steps)
    dtype = _flat_dtype("minimize", params)
    if ftol is None:
        ftol = max(2.220446049250313e-09, 10 * float(np.finfo(dtype).eps))

    value, grads = value_and_grad(fun)(params)
    value = fnp.asarray(value).astype(dtype)
    done = _max_abs(grads) <= gtol
    start = _Loop(params, opt.init(params), value, grads, fnp.zeros((), fnp.int32),
                  fnp.ones((), fnp.int32), done, done)

    def cond(c):
        return fnp.logical_and(fnp.logical_not(c.stop), c.iterations < max_iters)

    def body(c):
        updates, state = opt.update(c.grads, c.state, c.params, value=c.value, value_fn=fun)
        params = apply_updates(c.params, updates)
        small_grad = _max_abs(state.grad) <= gtol
        scale = fnp.maximum(fnp.maximum(fnp.abs(c.value), fnp.abs(state.value)), 1)
        small_decrease = (c.value - state.value) <= ftol * scale
        moved = state.step_size > 0
        converged = fnp.logical_or(small_grad, fnp.logical_and(moved, small_decrease))
        # A failed line search from a curvature-scaled direction is retried once from the
        # gradient (the update cleared the memory); failing from the gradient ends it.
        from_gradient = fnp.all(c.state.rho_history == 0)
        stuck = fnp.logical_and(fnp.logical_not(moved), from_gradient)
        stop = fnp.logical_or(converged, stuck)
        return _Loop(params, state, state.value, state.grad, c.iterations + 1,
                     c.evaluations + state.linesearch_steps, converged, stop)

    end = while_loop(cond, body, start)
    info = MinimizeInfo(end.converged, end.iterations, end.value, _max_abs(end.grads),
                        end.evaluations)
    return end.params, info

"""Debugging helpers: derivative checks against finite differences, gradient health, NaN
checking, and printing or tapping runtime values from inside transformed functions."""

from __future__ import annotations

import numpy as np

from functorch_lite import tree as tree_util

__all__ = ["check_grads", "grad_norms", "print", "tap", "nans", "assert_max_traces"]


def _np(x):
    return np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float64)) \
        if np.asarray(x).dtype.kind in "fc" else np.asarray(x)


def _inner(a, b):
    la, lb = tree_util.leaves(a), tree_util.leaves(b)
    return float(sum(np.vdot(_np(x), _np(y)).real for x, y in zip(la, lb)))


def _random_like(tree, rng):
    from functorch_lite import numpy as fnp

    def one(x):
        x = fnp.asarray(x)
        if x.dtype.kind not in "fc":
            return fnp.zeros(x.shape, x.dtype)
        return fnp.asarray(rng.standard_normal(x.shape).astype(x.dtype))
    return tree_util.map(one, tree)


def _default_tol(args):
    dtypes = [np.asarray(x).dtype for x in tree_util.leaves(args)]
    if any(d == np.float32 for d in dtypes):
        return 2e-2, 2e-2, 1e-3
    return 1e-5, 1e-5, 1e-6


def _check_close(what, got, want, atol, rtol):
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        raise AssertionError(
            f"check_grads: {what} mismatch: got {got!r}, expected {want!r} "
            f"(atol={atol}, rtol={rtol})")


def check_grads(f, args, order=2, modes=("fwd", "rev"), atol=None, rtol=None, eps=None,
                seed=0):
    """Check ``f``'s derivatives against central finite differences, up to ``order``.

    ``"fwd"`` compares ``jvp`` along a random direction with the finite difference along
    it; ``"rev"`` checks ``<vjp(u), v> == <u, jvp(v)>`` for random ``u`` and ``v`` (and
    against finite differences when ``"fwd"`` is not requested). Order 2 repeats the checks
    on the derivative functions themselves. Use float64 inputs for tight tolerances.

    Args:
        f: function of the positional ``args`` (pytrees of float arrays).
        args: tuple of arguments.
        order: highest derivative order to check.
        modes: any of ``"fwd"``, ``"rev"``.
        atol, rtol, eps: tolerances and finite-difference step (dtype-based defaults).
        seed: seed of the random directions.

    Raises:
        AssertionError: naming the mode and order that disagree.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.debug.check_grads(fnp.sin, (fnp.array([0.3, 1.2], dtype="float64"),), order=2)
    """
    from functorch_lite import autodiff

    args = tuple(args)
    d_atol, d_rtol, d_eps = _default_tol(args)
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    eps = d_eps if eps is None else eps
    rng = np.random.RandomState(seed)
    v = _random_like(args, rng)

    def shifted(sign):
        return tree_util.map(lambda x, t: x + sign * eps * t if np.asarray(x).dtype.kind in
                             "fc" else x, args, v)

    def fd():
        plus, minus = f(*shifted(1)), f(*shifted(-1))
        return tree_util.map(lambda a, b: (_np(a) - _np(b)) / (2 * eps), plus, minus)

    out, t_out = autodiff.jvp(f, args, v)
    if "fwd" in modes:
        for got, want in zip(tree_util.leaves(t_out), tree_util.leaves(fd())):
            _check_close(f"forward-mode (order {order})", _np(got), want, atol, rtol)
    if "rev" in modes:
        u = _random_like(out, rng)
        _, pullback = autodiff.vjp(f, *args)
        ct = pullback(u)
        lhs = _inner(ct, v)
        rhs = _inner(u, t_out if "fwd" in modes else fd())
        _check_close(f"reverse-mode <vjp(u), v> vs <u, jvp(v)> (order {order})", lhs, rhs,
                     atol * max(1.0, abs(rhs)), rtol)
    if order > 1:
        if "fwd" in modes:
            check_grads(lambda *a: autodiff.jvp(f, a, v)[1], args, order - 1, ("fwd",),
                        atol, rtol, eps, seed + 1)
        if "rev" in modes:
            u = _random_like(out, rng)
            check_grads(lambda *a: autodiff.vjp(f, *a)[1](u), args, order - 1, ("rev",),
                        atol, rtol, eps, seed + 2)


def grad_norms(grads):
    """Per-leaf L2 norms of a gradient pytree (spot vanishing or exploding gradients).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.debug.grad_norms({"w": fnp.array([3.0, 4.0])})
        {'w': 5.0}
    """
    return tree_util.map(lambda g: float(np.sqrt(np.sum(_np(g) ** 2))), grads)


def assert_max_traces(n):
    """Fail (AssertionError) when a function is traced by ``jit`` more than ``n`` times.

    Use it as a decorator on a jitted function (its ``trace_count`` may not exceed ``n``),
    on a plain function that is then jitted (it may not run more than ``n`` times), or as
    a context manager (no jitted function may be traced more than ``n`` times inside the
    block). The error names the function and its latest retrace reason.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> @fl.debug.assert_max_traces(1)
        ... @fl.jit
        ... def double(x):
        ...     return x * 2
        >>> double(fnp.ones(2)); double(fnp.zeros(2))   # same shape: one trace
        Array([2., 2.], dtype=float32)
        Array([0., 0.], dtype=float32)
        >>> double(fnp.ones(3))
        Traceback (most recent call last):
            ...
        AssertionError: jit(double) was traced 2 times, more than the 1 allowed by ...
    """
    from functorch_lite.jit.api import assert_max_traces as _assert_max_traces

    return _assert_max_traces(n)


class nans:  # noqa: N801 - used like a function
    """Raise at the first primitive that produces a NaN (``enabled=True``), naming it.

    ``fl.debug.nans()`` turns the check on for the whole program and ``nans(False)`` off;
    as a context manager (``with fl.debug.nans():``) it holds inside the block and the
    previous setting comes back on leaving it. While it is on, the floating-point outputs
    of every primitive are checked: eagerly, under ``grad``/``jvp``/``vmap``, in the
    derivative rules of a backward pass, inside control-flow bodies and inside ``jit``.
    The error names the primitive, its input shapes and dtypes, the derivative rule,
    control-flow body or jitted function it ran in, and the line of the user's code that
    called it. A NaN that was already in an input does not count: only a primitive that
    creates one raises.

    It costs nothing while off. While on, everything runs op by op, as under a transform:
    a jitted function evaluates its graph equation by equation instead of running
    compiled code (when one makes a NaN, the function is run again without ``jit`` to
    find the line, so its side effects run twice; donation is ignored), and
    ``fl.while_loop``/``fl.fori_loop``/``fl.scan`` trace their bodies as they do under
    ``grad``. Turn it on to find a NaN, not to train.

    Args:
        enabled: turn the check on (True) or off (False).

    Raises:
        RuntimeError: when turned on inside a transformed function (turn it on before
            calling grad/vmap/jit instead).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([1.0, -1.0])
        >>> with fl.debug.nans():
        ...     fnp.sqrt(x * 4)
        Traceback (most recent call last):
            ...
        FloatingPointError: sqrt produced NaN from inputs without NaN: sqrt(f32[2]) -> ...
        >>> with fl.debug.nans():   # a NaN already in the input is not reported again
        ...     fnp.array([1.0, float("nan")]) * 2
        Array([ 2., nan], dtype=float32)
    """

    def __init__(self, enabled=True):
        from functorch_lite import _nans

        self.previous = _nans.enabled()
        _nans.set_enabled(bool(enabled))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        from functorch_lite import _nans

        _nans.set_enabled(self.previous)
        return False


def tap(x, fn):
    """Call ``fn(x)`` with the runtime value of ``x`` and return ``x`` unchanged: a
    forward hook that also works under transforms.

    ``x`` is a pytree of arrays; ``fn`` gets the same structure with ``fl.Array`` leaves
    (never tracers) and its result is ignored. Eagerly ``fn`` runs at once; inside ``jit``
    each time the compiled function runs (the call is never optimized away); under
    ``vmap`` once with the whole batch (every leaf with the mapped axis first); under
    ``grad``/``jvp`` with the forward values. For derivatives ``tap`` is the identity.
    Like ``fl.debug.print``, it runs again wherever a forward computation is recomputed:
    in the backward pass of ``fl.checkpoint`` and of ``fl.scan`` (each step replayed).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> seen = []
        >>> @fl.jit
        ... def f(x):
        ...     h = fl.debug.tap(fnp.tanh(x), seen.append)
        ...     return fnp.sum(h * h)
        >>> _ = f(fnp.zeros(2)); _ = f(fnp.ones(2))
        >>> seen
        [Array([0., 0.], dtype=float32), Array([0.7615942, 0.7615942], dtype=float32)]
        >>> fl.grad(lambda x: fl.debug.tap(x, seen.append) ** 2)(fnp.array(3.0))
        Array(6., dtype=float32)
        >>> seen[-1]
        Array(3., dtype=float32)
    """
    from functorch_lite.core import bind
    from functorch_lite.primitives.control_flow import tap_p

    if not callable(fn):
        raise TypeError(f"fl.debug.tap(x, fn): fn must be callable, got "
                        f"{type(fn).__name__} ({fn!r:.60})")
    leaves, in_tree = tree_util.flatten(x)
    bind(tap_p, *leaves, fn=fn, in_tree=in_tree)
    return x


# NB: defined last and under the builtin's name on purpose (``fl.debug.print``); this
# module itself never calls the builtin ``print``.
def print(fmt, *args, **kwargs):  # noqa: A001
    """Print ``fmt.format(*args, **kwargs)`` with the runtime values, also under transforms.

    Eagerly it prints at once; inside ``jit`` it prints each time the compiled function
    runs (the call is never optimized away); under ``vmap`` it prints the whole batch;
    under ``grad`` it prints the forward values. ``args`` may be pytrees of arrays.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> @fl.jit
        ... def f(x):
        ...     fl.debug.print("x = {}, sum = {s}", x, s=fnp.sum(x))
        ...     return x * 2
        >>> _ = f(fnp.array([1.0, 2.0]))
        x = [1. 2.], sum = 3.0
    """
    from functorch_lite.core import bind
    from functorch_lite.primitives.control_flow import debug_print_p

    leaves, in_tree = tree_util.flatten((args, kwargs))
    bind(debug_print_p, *leaves, fmt=fmt, in_tree=in_tree)

"""Specs for the control-flow primitives (cond, while, scan) and the debug_print and tap
effects.

Called eagerly the public functions run as Python; every transform of the property tests
(jvp, vjp, vmap at random in_axes, jit) goes through the primitive and its rules. The
predicates depend on the data, so vmap exercises both the batched-predicate path (select
per example) and the unbatched one. ``valid`` keeps derivative checks away from the points
where a branch changes.
"""

import numpy as np
from hypothesis import strategies as st

import functorch_lite as fl
import functorch_lite.numpy as fnp
from specs import array, shapes, spec


def _same_shape_args(n, lo=-3.0, hi=3.0):
    def args(dtype):
        return shapes(max_dims=2).flatmap(
            lambda s: st.tuples(*[array(dtype, s, lo, hi) for _ in range(n)]))
    return args


# --- cond ---------------------------------------------------------------------------------
def _cond(p, x):
    return fl.cond(fnp.sum(p) > 0, lambda v: fnp.sin(v) * 2.0, lambda v: fnp.cos(v) - v, x)


def _cond_ref(p, x):
    return np.sin(x) * 2.0 if np.sum(p) > 0 else np.cos(x) - x


spec("cond", _cond, _cond_ref, _same_shape_args(2), covers=("cond",), diff_argnums=(1,),
     extra={"valid": lambda p, x: abs(float(np.sum(p))) > 1e-2})

_BRANCHES = (lambda x, y: x * y, lambda x, y: x + fnp.sin(y), lambda x, y: x - y * y)


def _switch(x, y):
    return fl.switch(fnp.sum(x > 0), _BRANCHES, x, y)


def _switch_ref(x, y):
    i = min(int(np.sum(x > 0)), 2)
    return [x * y, x + np.sin(y), x - y * y][i]


spec("switch", _switch, _switch_ref, _same_shape_args(2), covers=("cond",),
     extra={"valid": lambda x, y: bool(np.all(np.abs(x) > 1e-2))})


# --- while --------------------------------------------------------------------------------
def _while(x):
    return fl.while_loop(lambda v: fnp.max(v) < 10.0, lambda v: v * 2.0 + 1.0, x)


def _while_ref(x):
    x = np.asarray(x)
    while np.max(x) < 10.0:
        x = x * 2.0 + 1.0
    return x


# Reverse mode does not apply to while loops (tested in test_control_flow.py: forward mode).
spec("while_loop", _while, _while_ref, _same_shape_args(1, 0.1, 3.0), covers=("while",),
     diff_argnums=())


# --- scan ---------------------------------------------------------------------------------
def _scan_args(dtype):
    return st.tuples(shapes(max_dims=2), st.integers(1, 4)).flatmap(
        lambda sn: st.tuples(array(dtype, sn[0]), array(dtype, (sn[1],) + tuple(sn[0]))))


def _step(c, x):
    c = fnp.sin(c) * x + c
    return c, c * 2.0


def _scan_fn(reverse):
    def fn(init, xs):
        return fl.scan(_step, init, xs, reverse=reverse)
    return fn


def _scan_ref(reverse):
    def ref(init, xs):
        c, ys = np.asarray(init), [None] * len(xs)
        for i in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
            c = np.sin(c) * xs[i] + c
            ys[i] = c * 2.0
        return c, np.stack(ys)
    return ref


spec("scan", _scan_fn(False), _scan_ref(False), _scan_args, covers=("scan",))
spec("scan_reverse", _scan_fn(True), _scan_ref(True), _scan_args, covers=("scan",))


def _fori(x, y):
    return fl.fori_loop(0, 3, lambda i, v: fnp.tanh(v * y) + i, x)


def _fori_ref(x, y):
    v = np.asarray(x)
    for i in range(3):
        v = np.tanh(v * y) + i
    return v


spec("fori_loop", _fori, _fori_ref, _same_shape_args(2), covers=("scan",))


# --- debug_print --------------------------------------------------------------------------
def _print_then(x):
    fl.debug.print("debug_print spec: {}", x)
    return fnp.asarray(x) * 1.5


spec("debug_print", _print_then, lambda x: np.asarray(x) * 1.5, _same_shape_args(1),
     covers=("debug_print",))


# --- tap ----------------------------------------------------------------------------------
def _concrete_only(value):
    if not isinstance(value, fl.Array):
        raise AssertionError(f"fl.debug.tap handed fn a {type(value).__name__}, not an Array")


def _tap_then(x):
    return fl.debug.tap(fnp.asarray(x) * 1.5, _concrete_only)


spec("tap", _tap_then, lambda x: np.asarray(x) * 1.5, _same_shape_args(1), covers=("tap",))

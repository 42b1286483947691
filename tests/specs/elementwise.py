"""Specs for the elementwise primitives."""

import numpy as np

import functorch_lite.nn as fl_nn
import functorch_lite.numpy as fnp
from specs import broadcast_pair_args, spec, unary_args

# name: (domain lo, hi, avoid_zero)
UNARY = {
    "negative": (-3, 3), "absolute": (-3, 3, True), "sign": (-3, 3, True),
    "floor": (-3, 3), "ceil": (-3, 3), "trunc": (-3, 3), "rint": (-3, 3),
    "square": (-3, 3), "sqrt": (0.1, 4), "cbrt": (0.1, 4), "reciprocal": (-3, 3, True),
    "exp": (-3, 3), "exp2": (-3, 3), "expm1": (-3, 3), "log": (0.1, 4), "log2": (0.1, 4),
    "log10": (0.1, 4), "log1p": (-0.5, 3), "sin": (-3, 3), "cos": (-3, 3),
    "tan": (-1.2, 1.2), "arcsin": (-0.9, 0.9), "arccos": (-0.9, 0.9), "arctan": (-3, 3),
    "sinh": (-3, 3), "cosh": (-3, 3), "tanh": (-3, 3), "arcsinh": (-3, 3),
    "arccosh": (1.1, 4), "arctanh": (-0.9, 0.9), "real": (-3, 3), "conjugate": (-3, 3),
}
# Functions whose derivative is zero almost everywhere: FD across a jump would be wrong,
# so their derivative checks use points away from the jumps (ensured by rounding below).
PIECEWISE = {"floor", "ceil", "trunc", "rint", "sign"}

for _name, (lo, hi, *az) in UNARY.items():
    spec(_name, getattr(fnp, _name), getattr(np, _name),
         unary_args(lo, hi, avoid_zero=bool(az)),
         covers=(_name if _name != "absolute" else "absolute",),
         diff_argnums=() if _name in PIECEWISE else None,
         dtypes=("float32", "float64", "int64") if _name in ("negative", "absolute", "square",
                                                              "sign") else
         ("float32", "float64"))

for _name in ("isnan", "isinf", "isfinite", "signbit"):
    spec(_name, getattr(fnp, _name), getattr(np, _name), unary_args(), diff_argnums=())
spec("logical_not", fnp.logical_not, np.logical_not, unary_args(), dtypes=("bool",),
     diff_argnums=())
spec("invert", fnp.invert, np.invert, unary_args(0, 10), dtypes=("int64", "bool"),
     diff_argnums=())
spec("imag", fnp.imag, np.imag, unary_args(), diff_argnums=())
spec("round", lambda x: fnp.round(x, 1), lambda x: np.round(x, 1), unary_args(),
     diff_argnums=())

BINARY = {
    "add": {}, "subtract": {}, "multiply": {},
    "true_divide": dict(avoid_zero_second=True),
    "power": dict(lo=0.2, hi=3.0, lo2=-2.0, hi2=2.0),
    "maximum": {}, "minimum": {},
    "arctan2": dict(lo=0.2, hi=3.0, lo2=0.2, hi2=3.0),
    "hypot": dict(lo=0.2, hi=3.0), "logaddexp": {},
}
def _no_ties(x, y):
    # max/min are not differentiable at ties: finite differences there disagree with any rule
    return bool(np.all(np.abs(np.subtract(x, y)) > 1e-3))


def _away_from_jumps(x, y):
    r = np.remainder(x, y)
    return bool(np.all(np.minimum(np.abs(r), np.abs(np.abs(y) - np.abs(r))) > 1e-3))


def _nonzero(x, y):
    return bool(np.all(np.abs(x) > 1e-3) and np.all(np.abs(y) > 1e-3))


for _name, kw in BINARY.items():
    spec(_name, getattr(fnp, _name), getattr(np, _name), broadcast_pair_args(**kw),
         extra={"valid": _no_ties} if _name in ("maximum", "minimum") else {},
         dtypes=("float32", "float64", "int64") if _name in ("add", "subtract", "multiply",
                                                              "maximum", "minimum") else
         ("float32", "float64"))

# relu (fl.nn.relu): derivative [x > 0]; finite differences need points away from 0
spec("relu", lambda x: fl_nn.relu(x), lambda x: np.maximum(x, 0).astype(np.asarray(x).dtype),
     unary_args(-3, 3, avoid_zero=True), dtypes=("float32", "float64", "int64"))

spec("heaviside", fnp.heaviside, np.heaviside, broadcast_pair_args(-2, 2), diff_argnums=(),
     dtypes=("float32", "float64"))
spec("floor_divide", fnp.floor_divide, np.floor_divide,
     broadcast_pair_args(avoid_zero_second=True), diff_argnums=(),
     dtypes=("float64", "int64"))
spec("remainder", fnp.remainder, np.remainder, broadcast_pair_args(lo2=0.5, hi2=3.0),
     diff_argnums=(0,), dtypes=("float64",), extra={"valid": _away_from_jumps})
spec("copysign", fnp.copysign, np.copysign, broadcast_pair_args(avoid_zero_second=True),
     diff_argnums=(0,), dtypes=("float64",), extra={"valid": _nonzero})
for _name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
    spec(_name, getattr(fnp, _name), getattr(np, _name), broadcast_pair_args(-2, 2),
         diff_argnums=(), dtypes=("float32", "int64"))
for _name in ("logical_and", "logical_or", "logical_xor"):
    spec(_name, getattr(fnp, _name), getattr(np, _name), broadcast_pair_args(),
         diff_argnums=(), dtypes=("bool",))
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"):
    spec(_name, getattr(fnp, _name), getattr(np, _name), broadcast_pair_args(0, 5),
         diff_argnums=(), dtypes=("int64",))


def _where_args(dtype):
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    from specs import array

    return hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3).flatmap(
        lambda bs: st.tuples(array("bool", bs.input_shapes[0]),
                             array(dtype, bs.input_shapes[1]),
                             array(dtype, bs.input_shapes[2])))


spec("where", fnp.where, np.where, _where_args, diff_argnums=(1, 2))
spec("convert_element_type", lambda x: fnp.astype(x, "float32"),
     lambda x: x.astype("float32"), unary_args(), dtypes=("float64", "int64"),
     diff_argnums=())
# The derivative of a cast, checked in float64 end to end: float64 -> float64 is the
# identity cast, float64 -> complex128 -> real exercises a real cast both ways.
spec("convert_element_type_roundtrip",
     lambda x: fnp.real(fnp.astype(x, "complex128")) * fnp.astype(x, "float64"),
     lambda x: x.astype("complex128").real * x, unary_args(), dtypes=("float64",),
     covers=("convert_element_type",))


# max_share(g, a, b) = g * ([a > b] + [a == b] / 2): the derivative rule of maximum and
# minimum. a and b are rounded so that ties (the 1/2 branch) are common.
def _max_share_args(dtype):
    from hypothesis.extra import numpy as hnp

    from specs import array

    return hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3).flatmap(
        lambda bs: array(dtype, bs.input_shapes[0]).flatmap(
            lambda g: array(dtype, bs.input_shapes[1]).flatmap(
                lambda a: array(dtype, bs.input_shapes[2]).map(
                    lambda b: (g, np.round(a), np.round(b))))))


def _max_share(g, a, b):
    from functorch_lite.core import bind
    from functorch_lite.primitives.elementwise import max_share_p

    return bind(max_share_p, g, a, b)


spec("max_share", _max_share,
     lambda g, a, b: g * ((a > b) + 0.5 * (a == b)).astype(g.dtype),
     _max_share_args, diff_argnums=(0,))

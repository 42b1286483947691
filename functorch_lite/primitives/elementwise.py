"""Elementwise primitives: one line each, derivative given once (see ``rules``).

``derivative(x, y)`` receives the input and the output, so ops like ``exp`` and
``tanh`` reuse the output instead of recomputing it. The ``emit`` of an elementwise
primitive is the name of the backend ufunc the jit calls.
"""

from __future__ import annotations

import math

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, aval_of, bind
from functorch_lite.primitives.rules import (
    _broadcast_tangent,
    _elementwise_abstract_eval,
    _elementwise_batch,
    binary,
    broadcast_shapes_for,
    unary,
    unbroadcast,
)

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _ufunc(name):
    """impl calling the backend's ufunc ``name`` (looked up once for NumPy)."""
    np_ufunc = getattr(np, name)

    def impl(xp, *args):
        return (np_ufunc if xp is np else getattr(xp, name))(*args)

    return impl


def _u(name, derivative=None, **kw):
    prim = unary(name, _ufunc(name), derivative, emit=name, **kw)
    prim.np_ufunc = getattr(np, name)
    return prim


def _b(name, derivatives=None, **kw):
    prim = binary(name, _ufunc(name), derivatives, emit=name, **kw)
    prim.np_ufunc = getattr(np, name)
    return prim


# --- unary: arithmetic -----------------------------------------------------------------
negative_p = _u("negative", lambda x, y: -1)
abs_p = _u("absolute", lambda x, y: fnp.sign(x))
sign_p = _u("sign")                 # derivative zero almost everywhere
floor_p = _u("floor")
ceil_p = _u("ceil")
trunc_p = _u("trunc")
rint_p = _u("rint")
square_p = _u("square", lambda x, y: 2 * x)
sqrt_p = _u("sqrt", lambda x, y: 0.5 / y)
cbrt_p = _u("cbrt", lambda x, y: 1 / (3 * y * y))
reciprocal_p = _u("reciprocal", lambda x, y: -(y * y))
round_p = unary("round", lambda xp, x, decimals: xp.round(x, decimals), None, emit="round")

# --- unary: exponentials and logarithms -------------------------------------------------
exp_p = _u("exp", lambda x, y: y)
exp2_p = _u("exp2", lambda x, y: y * _LN2)
expm1_p = _u("expm1", lambda x, y: y + 1)
log_p = _u("log", lambda x, y: 1 / x)
log2_p = _u("log2", lambda x, y: 1 / (x * _LN2))
log10_p = _u("log10", lambda x, y: 1 / (x * _LN10))
log1p_p = _u("log1p", lambda x, y: 1 / (1 + x))

# --- unary: trigonometric and hyperbolic -----------------------------------------------
sin_p = _u("sin", lambda x, y: fnp.cos(x))
cos_p = _u("cos", lambda x, y: -fnp.sin(x))
tan_p = _u("tan", lambda x, y: 1 + y * y)
arcsin_p = _u("arcsin", lambda x, y: 1 / fnp.sqrt(1 - x * x))
arccos_p = _u("arccos", lambda x, y: -1 / fnp.sqrt(1 - x * x))
arctan_p = _u("arctan", lambda x, y: 1 / (1 + x * x))
sinh_p = _u("sinh", lambda x, y: fnp.cosh(x))
cosh_p = _u("cosh", lambda x, y: fnp.sinh(x))
tanh_p = _u("tanh", lambda x, y: 1 - y * y)
arcsinh_p = _u("arcsinh", lambda x, y: 1 / fnp.sqrt(x * x + 1))
arccosh_p = _u("arccosh", lambda x, y: 1 / fnp.sqrt(x * x - 1))
arctanh_p = _u("arctanh", lambda x, y: 1 / (1 - x * x))

# --- unary: predicates and logic (no derivatives) ---------------------------------------
isnan_p = _u("isnan", differentiable=False)
isinf_p = _u("isinf", differentiable=False)
isfinite_p = _u("isfinite", differentiable=False)
signbit_p = _u("signbit", differentiable=False)
logical_not_p = _u("logical_not", differentiable=False)
invert_p = _u("invert", differentiable=False)

# --- unary: complex parts ---------------------------------------------------------------
real_p = _u("real", lambda x, y: 1)
imag_p = _u("imag", differentiable=False)
conj_p = _u("conjugate", lambda x, y: 1)


# --- binary -----------------------------------------------------------------------------
def _pow_dx(x, y, out):
    if isinstance(y, (int, float)):
        if y == 0 or y == 1:  # constants: no x**0 array for higher derivatives to carry
            return y
        return y * x ** (y - 1)
    # d/dx x**y = y * x**(y-1), defined as 0 at x == y == 0 (where the formula is 0 * inf).
    # The inner where keeps the untaken branch finite so its derivatives stay finite too.
    both_zero = fnp.logical_and(x == 0, y == 0)
    safe_x = fnp.where(both_zero, 1, x)
    return fnp.where(both_zero, 0, y * safe_x ** (y - 1))


def _pow_dy(x, y, out):
    # d/dy x**y = x**y * log(x); 0 where x == 0 (the limit from the right), not nan.
    safe_x = fnp.where(x == 0, 1, x)
    return fnp.where(x == 0, 0, out * fnp.log(safe_x))


add_p = _b("add", (1, 1))
subtract_p = _b("subtract", (1, -1))
multiply_p = _b("multiply", (lambda x, y, out: y, lambda x, y, out: x), symmetric=True)
multiply_p.vjp_reads = "inputs"
true_divide_p = _b("true_divide", (lambda x, y, out: 1 / y, lambda x, y, out: -out / y))
floor_divide_p = _b("floor_divide", (None, None))  # piecewise constant
remainder_p = _b("remainder", (1, lambda x, y, out: -fnp.floor_divide(x, y)))
power_p = _b("power", (_pow_dx, _pow_dy))
# NumPy's maximum/minimum loop for an array against a scalar is not vectorized (here:
# relu of 32K float32 takes 13 us as np.maximum(x, 0.0) and 5 us against an array of
# zeros; 20 us against 3 us in place). A float array meeting a Python zero therefore meets
# a cached array of zeros of its shape: same values, same result dtype (NEP 50).
_ZEROS_MIN_SIZE = 2048
_ZEROS_MAX_BYTES = 1 << 26
_zeros_cache: dict = {}


def zeros_operand(shape, dtype):
    """A read-only array of +0 of ``shape`` and ``dtype``, cached (at most 32, each under
    64 MiB): the fast operand of maximum/minimum against a zero (see above)."""
    key = (shape, dtype)
    z = _zeros_cache.get(key)
    if z is None:
        if len(_zeros_cache) >= 32:
            del _zeros_cache[next(iter(_zeros_cache))]
        z = _zeros_cache[key] = np.zeros(shape, dtype)
        z.flags.writeable = False
    return z


def is_zero_scalar(v):
    """``v`` is the Python scalar +0 (an int 0 or a float +0.0, not -0.0)."""
    return (type(v) is int and v == 0) or (type(v) is float and v == 0.0
                                            and math.copysign(1.0, v) > 0)


def zeros_instead_of(dtype, ndim, size, v):
    """Whether the scalar ``v`` met by a NumPy array (``dtype``, ``ndim``, ``size``) in
    maximum/minimum should be passed as :func:`zeros_operand`: a big enough float array
    and a +0 scalar."""
    return (dtype.kind == "f" and ndim > 0 and _ZEROS_MIN_SIZE <= size
            and size * dtype.itemsize <= _ZEROS_MAX_BYTES and is_zero_scalar(v))


def _extremum_ufunc(name):
    np_ufunc = getattr(np, name)

    def impl(xp, x, y):
        if xp is not np:
            return getattr(xp, name)(x, y)
        if type(y) in (int, float) and type(x) is np.ndarray:
            if zeros_instead_of(x.dtype, x.ndim, x.size, y):
                y = zeros_operand(x.shape, x.dtype)
        elif type(x) in (int, float) and type(y) is np.ndarray:
            if zeros_instead_of(y.dtype, y.ndim, y.size, x):
                x = zeros_operand(y.shape, y.dtype)
        return np_ufunc(x, y)

    return impl


_maximum_impl = _extremum_ufunc("maximum")
maximum_p = binary("maximum", _maximum_impl, None, emit="maximum")
minimum_p = binary("minimum", _extremum_ufunc("minimum"), None, emit="minimum")

# relu: max(x, 0) with derivative [x > 0], 0 at x = 0 (torch.relu and jax.nn.relu; maximum
# splits the tie and gives 1/2, which costs its backward a tie check). One primitive, so
# the backward is one compare and one multiply, as written by hand. ``fl.nn.relu`` binds it.
relu_p = unary("relu", lambda xp, x: _maximum_impl(xp, x, 0), lambda x, y: x > 0)


def _relu_emit(em, eqn, ins, outs, indent):
    # the jit writes relu as the maximum it is (against zeros made at compile time)
    aval = eqn.inputs[0].aval
    zero = em.zeros_for(aval, 0) or "0"
    em.emit(f"{outs[0]} = {em.normalize(f'xp.maximum({ins[0]}, {zero})', aval)}", indent)


relu_p.emit_code = _relu_emit
heaviside_p = _b("heaviside", (None, None))  # piecewise constant: zero derivative
arctan2_p = _b("arctan2", (lambda x, y, out: y / (x * x + y * y),
                           lambda x, y, out: -x / (x * x + y * y)))
hypot_p = _b("hypot", (lambda x, y, out: x / out, lambda x, y, out: y / out))
logaddexp_p = _b("logaddexp", (lambda x, y, out: fnp.exp(x - out),
                               lambda x, y, out: fnp.exp(y - out)))
copysign_p = _b("copysign", (lambda x, y, out: fnp.sign(x) * fnp.sign(out), None))

equal_p = _b("equal", differentiable=False)
not_equal_p = _b("not_equal", differentiable=False)
less_p = _b("less", differentiable=False)
less_equal_p = _b("less_equal", differentiable=False)
greater_p = _b("greater", differentiable=False)
greater_equal_p = _b("greater_equal", differentiable=False)
logical_and_p = _b("logical_and", differentiable=False)
logical_or_p = _b("logical_or", differentiable=False)
logical_xor_p = _b("logical_xor", differentiable=False)
bitwise_and_p = _b("bitwise_and", differentiable=False)
bitwise_or_p = _b("bitwise_or", differentiable=False)
bitwise_xor_p = _b("bitwise_xor", differentiable=False)
left_shift_p = _b("left_shift", differentiable=False)
right_shift_p = _b("right_shift", differentiable=False)


# --- select -----------------------------------------------------------------------------
# ``where`` routes cotangents with a select, never a multiply by the mask, so an inf or
# nan in the branch that was not taken cannot leak into the gradient.
def _where_jvp(primals, tangents):
    c, x, y = primals
    _, tx, ty = tangents
    out = bind(where_p, c, x, y)
    if tx is None and ty is None:
        return out, None
    tx = fnp.zeros((), out.dtype) if tx is None else tx
    ty = fnp.zeros((), out.dtype) if ty is None else ty
    t = bind(where_p, c, tx, ty)
    if t.shape != out.shape:
        t = fnp.broadcast_to(t, out.shape)
    return out, fnp.astype(t, out.dtype) if t.dtype != out.dtype else t


def _where_vjp(ct, out, primals, needs):
    c, x, y = primals
    zero = fnp.zeros((), ct.dtype)
    ct_x = unbroadcast(bind(where_p, c, ct, zero), aval_of(x)) if needs[1] else None
    ct_y = unbroadcast(bind(where_p, c, zero, ct), aval_of(y)) if needs[2] else None
    return None, ct_x, ct_y


where_p = Primitive("where", _ufunc("where"), _elementwise_abstract_eval("where", _ufunc("where")),
                    jvp=_where_jvp, vjp=_where_vjp, emit="where",
                    batch=_elementwise_batch(lambda *a: bind(where_p, *a)))
where_p.elementwise = True


# --- max and min -------------------------------------------------------------------------
# d max(x, y)/dx is 1 where x > y, 0 where x < y and 1/2 at ties (the derivative is split
# evenly between tied operands, as in JAX and PyTorch). The rules apply it to a tangent or
# cotangent with one primitive, ``max_share(g, a, b) = g * ([a > b] + [a == b] / 2)``,
# instead of building the 0/0.5/1 weights as an array first: a relu's backward is then one
# compare and one multiply over the batch, like hand-written NumPy, not six passes with
# five fresh float arrays (at 128 KiB and up each one is a new mmap and its page faults).
def _max_share_impl(xp, g, a, b):
    out = xp.multiply(g, xp.greater(a, b))
    ties = xp.equal(a, b)
    if ties.any():  # rare for float data, but exact zeros (relu of zero rows) do tie
        out = out + xp.multiply(g, ties) * 0.5
    return out


def _max_share_abstract_eval(g, a, b):
    shape = broadcast_shapes_for("max_share", (g, a, b))
    return ShapedArray(shape, g.dtype, g.weak_type)


def _max_share(g, a, b):
    return bind(max_share_p, g, a, b)


def _max_share_buffers(g, a, b):
    return _max_share_impl(np, g, a, b)


def _max_share_jvp(primals, tangents):
    # Linear in g; piecewise constant in a and b.
    g, a, b = primals
    t = tangents[0]
    return _max_share(g, a, b), None if t is None else _max_share(t, a, b)


def _max_share_vjp(ct, out, primals, needs):
    g, a, b = primals
    return (unbroadcast(_max_share(ct, a, b), g) if needs[0] else None), None, None


max_share_p = Primitive("max_share", _max_share_impl, _max_share_abstract_eval,
                        jvp=_max_share_jvp, vjp=_max_share_vjp,
                        batch=_elementwise_batch(_max_share))


def _extremum_rules(prim, ordered):
    """Give ``prim`` (maximum or minimum) its derivative rules. ``ordered(x, y)`` is
    ``(a, b)`` such that ``x``'s share of the derivative is ``[a > b]`` (1/2 at ties)."""

    def jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        out = bind(prim, x, y)
        t = None if tx is None else _max_share(tx, *ordered(x, y))
        if ty is not None:
            term = _max_share(ty, *ordered(y, x))
            t = term if t is None else t + term
        return out, None if t is None else _broadcast_tangent(t, out)

    def vjp(ct, out, primals, needs):
        x, y = primals
        # on buffers (eager reverse mode) the impl itself, else the traceable primitive
        share = _max_share_buffers if type(ct) is np.ndarray else _max_share
        return (unbroadcast(share(ct, *ordered(x, y)), x) if needs[0] else None,
                unbroadcast(share(ct, *ordered(y, x)), y) if needs[1] else None)

    prim.jvp, prim.vjp = jvp, vjp
    prim.vjp_reads = "inputs"  # the rules compare x and y; the output is not needed


_extremum_rules(maximum_p, lambda x, y: (x, y))
_extremum_rules(minimum_p, lambda x, y: (y, x))


# --- dtype conversion -------------------------------------------------------------------
def _convert_abstract_eval(x, *, dtype):
    return ShapedArray(x.shape, dtype)


def _convert_jvp(primals, tangents, *, dtype):
    (x,), (t,) = primals, tangents
    out = bind(convert_element_type_p, x, dtype=dtype)
    if dtype.kind not in "fc":
        return out, None  # integer and boolean values carry no derivative
    return out, bind(convert_element_type_p, t, dtype=dtype)


def _convert_vjp(ct, out, primals, needs, *, dtype):
    (x,) = primals
    x_dtype = aval_of(x).dtype
    if x_dtype.kind not in "fc" or dtype.kind not in "fc":
        return (None,)
    if x_dtype.kind == "f" and aval_of(ct).dtype.kind == "c":
        ct = fnp.real(ct)  # the derivative of a real -> complex cast keeps the real part
    return (bind(convert_element_type_p, ct, dtype=x_dtype),)


convert_element_type_p = Primitive(
    "convert_element_type", lambda xp, x, dtype: xp.asarray(x).astype(dtype),
    _convert_abstract_eval, jvp=_convert_jvp, vjp=_convert_vjp, emit="astype",
    batch=lambda args, dims, dtype: (bind(convert_element_type_p, args[0], dtype=dtype),
                                     dims[0]))
convert_element_type_p.elementwise = True

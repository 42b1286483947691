"""The core: arrays, abstract values, primitives, traces and ``bind``.

Data flow. Every operation a user writes ends in ``bind(prim, *args, **params)``. With no
transform active, ``bind`` unwraps the arguments to backend buffers, calls the primitive's
``impl`` and wraps the result: no tracer, no graph, no tree flattening. With a transform
active, ``bind`` hands the call to the *current trace*. The trace lifts the arguments it
does not own, applies its rule for the primitive (jvp, vjp-record, batch, stage) and does
the arithmetic on its parent trace by setting the parent as current while the rule runs.
Each trace knows its parent; there are no numbered levels. When a transform returns, its
trace is invalidated, so a tracer that escaped fails loudly the next time it is used.
"""

from __future__ import annotations

import numpy as np

from functorch_lite.config import settings

__all__ = [
    "Array", "Tracer", "Trace", "Primitive", "ShapedArray", "bind", "aval_of",
    "LeakedTracerError", "ConcretizationError",
]


# --------------------------------------------------------------------------------------
# The current trace. One slot read on every bind; ``None`` means "eager".
# --------------------------------------------------------------------------------------
class _Context:
    __slots__ = ("trace",)

    def __init__(self):
        self.trace = None


ctx = _Context()


class _TraceScope:
    """``with _TraceScope(trace):`` makes ``trace`` current and restores the old one."""

    __slots__ = ("trace", "previous")

    def __init__(self, trace):
        self.trace = trace

    def __enter__(self):
        self.previous = ctx.trace
        ctx.trace = self.trace
        return self.trace

    def __exit__(self, *exc):
        ctx.trace = self.previous
        return False


def trace_scope(trace) -> _TraceScope:
    return _TraceScope(trace)


# --------------------------------------------------------------------------------------
# Backends. NB: no primitive calls numpy directly; each gets ``xp`` from its buffers.
# Until a CuPy buffer has been seen, every buffer is a NumPy buffer and ``xp`` is numpy
# without looking, which keeps the eager path short.
# --------------------------------------------------------------------------------------
class _Backends:
    __slots__ = ("gpu_seen",)

    def __init__(self):
        self.gpu_seen = False


backends = _Backends()


def xp_of_buffer(buf):
    """The array namespace (numpy or cupy) that owns ``buf``."""
    if type(buf) is np.ndarray or not backends.gpu_seen:
        return np
    module = type(buf).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy
    return np


def xp_of(bufs):
    """The namespace for a primitive's buffers; CPU and CUDA buffers must not be mixed."""
    if not backends.gpu_seen:
        return np
    cuda = [b for b in bufs if type(b).__module__.startswith("cupy")]
    if not cuda:
        return np
    import cupy

    device = cuda[0].device.id
    for b in cuda[1:]:
        if b.device.id != device:
            raise ValueError(
                f"an operation mixes arrays on cuda:{device} and cuda:{b.device.id}; move "
                "them to one device with fl.device_put(x, device) first")
    for b in bufs:
        if type(b) is np.ndarray and b.ndim > 0:
            raise ValueError(
                f"an operation mixes a CPU array {_short_aval(b)} with an array on "
                f"cuda:{device}; move one of them with fl.device_put(x, device) first")
    return cupy


def _short_aval(buf):
    return ShapedArray(tuple(buf.shape), buf.dtype).str_short()


# --------------------------------------------------------------------------------------
# Abstract values
# --------------------------------------------------------------------------------------
_WEAK_KIND_PROXY = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}
_DTYPE_SHORT = {"float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8",
                "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
                "uint16": "u16", "uint32": "u32", "uint64": "u64", "bool": "bool",
                "complex64": "c64", "complex128": "c128"}


class ShapedArray:
    """The abstract value of an array: shape, dtype, and whether the dtype is *weak*.

    A weak dtype comes from a Python scalar: it adapts to the other operand of a binary
    operation (NumPy 2 / NEP 50 promotion), so ``x_f32 * 2.0`` stays float32.
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False):
        self.shape = shape if type(shape) is tuple else tuple(shape)
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        self.weak_type = weak_type

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def promotion_operand(self):
        """What stands for this value in ``np.result_type``: a dtype, or a Python scalar."""
        return _WEAK_KIND_PROXY[self.dtype.kind] if self.weak_type else self.dtype

    def str_short(self):
        dt = _DTYPE_SHORT.get(self.dtype.name, self.dtype.name)
        return f"{dt}{'~' if self.weak_type else ''}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"

    def __eq__(self, other):
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))


_PY_SCALAR_DTYPES = {bool: np.dtype(bool), int: np.dtype(np.int64),
                     float: np.dtype(np.float64), complex: np.dtype(np.complex128)}


def aval_of(x) -> ShapedArray:
    """The abstract value of any accepted array-like (Array, Tracer, ndarray, scalar)."""
    t = type(x)
    if t is Array:
        b = x._buf
        return ShapedArray(b.shape, b.dtype)
    if t is np.ndarray:
        return ShapedArray(x.shape, x.dtype)
    if isinstance(x, Tracer):
        return x.aval
    if t in _PY_SCALAR_DTYPES:
        return ShapedArray((), _PY_SCALAR_DTYPES[t], weak_type=True)
    if t is ShapedArray:
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return ShapedArray(x.shape, x.dtype)
    return aval_of(to_buffer(x))


def is_weak_scalar(x) -> bool:
    return type(x) in _PY_SCALAR_DTYPES


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class LeakedTracerError(RuntimeError):
    """A traced value was used after the transform that created it returned."""


class ConcretizationError(TypeError):
    """A traced value was turned into a Python value where only its shape is known."""


def _leaked(tracer):
    trace = tracer._trace
    return LeakedTracerError(
        f"leaked tracer: a value traced by {trace.transform_name} (an {tracer.aval.str_short()}"
        f" tracer) was used after {trace.transform_name} returned. Values created inside a"
        " transformed function must leave it as its outputs; do not store them in globals,"
        " closures or object attributes.")


# --------------------------------------------------------------------------------------
# Conversion of inputs to backend buffers
# --------------------------------------------------------------------------------------
def to_buffer(x):
    """The backend buffer (or weak Python scalar) for an eager input; lists become arrays.

    Floats from Python lists take the default float dtype (float32 unless x64).
    """
    t = type(x)
    if t is Array:
        return x._buf
    if t is np.ndarray or t in _PY_SCALAR_DTYPES:
        return x
    if isinstance(x, Tracer):
        if not x._trace.valid:
            raise _leaked(x)
        raise LeakedTracerError(
            f"a value traced by {x._trace.transform_name} was used outside that transform")
    if isinstance(x, np.generic):
        return np.asarray(x)
    if t.__module__.startswith("cupy"):
        backends.gpu_seen = True
        return x
    if isinstance(x, (list, tuple)):
        return asarray_default(x)
    if isinstance(x, np.ndarray):  # subclasses (np.matrix, masked arrays) become plain
        return np.asarray(x)
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        return np.asarray(x)
    raise TypeError(
        f"expected an array, a Python scalar or a (nested) list of numbers, got "
        f"{t.__name__}: {x!r:.80}")


def asarray_default(x):
    """``np.asarray`` with the library's default dtypes for Python floats and complexes."""
    if isinstance(x, (list, tuple)):
        for item in x:
            if isinstance(item, Tracer):
                raise TypeError(
                    "a list containing traced values cannot be turned into an array "
                    "implicitly; use fnp.stack(list_of_arrays) instead")
            if type(item) is Array:
                x = [to_buffer(i) for i in x]
                break
    buf = np.asarray(x)
    if buf.dtype == np.float64:
        return buf.astype(settings.float_dtype, copy=False)
    if buf.dtype == np.complex128:
        return buf.astype(settings.complex_dtype, copy=False)
    if buf.dtype == object:
        raise TypeError(f"cannot make a numeric array from {x!r:.80} (ragged or non-numeric)")
    return buf


def _default_dtype_for(dtype):
    """float64/complex128 made from Python scalars become the default float/complex."""
    if dtype == np.float64:
        return settings.float_dtype
    if dtype == np.complex128:
        return settings.complex_dtype
    return dtype


def _wrap_result(out, args):
    """Slow path of wrapping an impl result that is not an ndarray."""
    if type(out) is tuple:
        return tuple(_wrap_result(o, args) if type(o) is not np.ndarray else Array(o)
                     for o in out)
    if isinstance(out, np.generic):
        buf = np.asarray(out)
        if all(type(a) in _PY_SCALAR_DTYPES for a in args):
            # Python scalars alone produce a default-typed array (float32 unless x64).
            buf = buf.astype(_default_dtype_for(buf.dtype), copy=False)
        return Array(buf)
    if type(out) in _PY_SCALAR_DTYPES:
        return _wrap_result(np.asarray(out)[()], args)
    if isinstance(out, np.ndarray):
        if all(type(a) in _PY_SCALAR_DTYPES for a in args):
            return Array(np.asarray(out).astype(_default_dtype_for(out.dtype), copy=False))
        return Array(np.asarray(out))
    if type(out).__module__.startswith("cupy"):
        return Array(out)
    raise TypeError(f"internal error: primitive produced {type(out).__name__}")


# --------------------------------------------------------------------------------------
# Primitives and bind
# --------------------------------------------------------------------------------------
class Primitive:
    """One operation with all its rules side by side.

    Attributes:
        name: the primitive's name, as shown in graphs and errors.
        impl: ``impl(xp, *buffers, **params)`` computes on raw buffers; ``xp`` is the
            backend namespace (numpy or cupy).
        abstract_eval: ``abstract_eval(*avals, **params) -> aval`` (or a tuple of avals
            when ``multiple_results``): the shape and dtype rule.
        jvp: ``jvp(primals, tangents, **params) -> (out, tangent_out)``; a tangent is
            ``None`` when it is known to be zero. Written with ``fnp`` (traceable).
        vjp: ``vjp(ct, out, primals, needs, **params) -> tuple of input cotangents``;
            ``needs[i]`` says whether input ``i`` wants one; ``None`` means zero.
        batch: ``batch(args, batch_dims, **params) -> (out, out_batch_dim)`` (vmap).
        emit: how the jit writes this primitive (a format string or a callable).
        differentiable: ``False`` for primitives whose outputs never carry derivatives
            (comparisons, argmax, ...): autodiff traces pass them through as constants.
        multiple_results: ``impl`` returns a tuple.
        vjp_reads: what ``vjp`` reads of ``out`` and ``primals``, so reverse mode keeps
            no more than that alive until the backward pass: ``"values"`` (both, the
            default), ``"inputs"`` (the primals only; ``out`` is passed as None: matmul,
            maximum) or ``"shapes"`` (their abstract values only: linear ops, ``add``).
            With less kept, an intermediate such as ``x @ w`` in ``x @ w + b`` is freed
            as soon as the forward pass is done with it.
        vjp_on_buffers: ``vjp`` also works when handed raw NumPy buffers (``ndarray``s,
            abstract values and Python scalars) in place of Arrays, returning buffers or
            Arrays. Eager reverse mode (no enclosing transform) then runs it on buffers,
            skipping a layer of dispatch per operation; the same rule, not a second one.
        np_ufunc: the NumPy ufunc that ``impl`` calls as is on NumPy buffers (no params),
            or None: hot paths call it directly.
    """

    __slots__ = ("name", "impl", "abstract_eval", "jvp", "vjp", "batch", "emit",
                 "differentiable", "multiple_results", "vjp_fwd", "vjp_bwd",
                 "vjp_reads", "vjp_on_buffers", "np_ufunc", "__dict__")

    def __init__(self, name, impl, abstract_eval, *, jvp=None, vjp=None, batch=None,
                 emit=None, differentiable=True, multiple_results=False):
        self.name = name
        self.impl = impl
        self.abstract_eval = abstract_eval
        self.jvp = jvp
        self.vjp = vjp
        self.batch = batch
        self.emit = emit
        self.differentiable = differentiable
        self.multiple_results = multiple_results
        # Reverse mode with custom residuals (custom rules, checkpoint, scan): when set,
        # ``vjp_fwd(primals, needs, **params) -> (out, residuals)`` replaces the plain
        # forward and ``vjp_bwd(ct, residuals, needs, **params)`` replaces ``vjp``.
        self.vjp_fwd = None
        self.vjp_bwd = None
        self.vjp_reads = "values"
        self.vjp_on_buffers = False
        self.np_ufunc = None
        registry[name] = self

    def bind(self, *args, **params):
        return bind(self, *args, **params)

    def __repr__(self):
        return f"<primitive {self.name}>"


registry: dict[str, Primitive] = {}


def bind(prim, *args, **params):
    """Apply ``prim`` to ``args`` on the current trace (or eagerly when none is active)."""
    trace = ctx.trace
    if trace is None:
        return eager_apply(prim, args, params)
    return trace.process(prim, args, params)


def eager_apply(prim, args, params):
    try:
        bufs = [a._buf for a in args]
        only_scalars = False
    except AttributeError:
        bufs = [to_buffer(a) for a in args]
        only_scalars = all(type(a) in _PY_SCALAR_DTYPES for a in args)
    xp = np
    if backends.gpu_seen:
        xp = xp_of(bufs)
        if xp is not np:  # CuPy refuses 0-d NumPy operands; scalars mix with any device
            bufs = [b[()] if type(b) is np.ndarray and b.ndim == 0 else b for b in bufs]
    try:
        out = prim.impl(xp, *bufs, **params)
    except Exception as e:
        _explain_failure(prim, args, params, e)
        raise
    if type(out) is np.ndarray and not only_scalars:
        return Array(out)
    return _wrap_result(out, args)


def _explain_failure(prim, args, params, error):
    """When an impl fails, let the shape rule raise its clearer message (naming the fnp
    function, the shapes and the fix) if it also rejects the inputs."""
    if prim.abstract_eval is None or not isinstance(error, (ValueError, TypeError)):
        return
    try:
        avals = [aval_of(a) for a in args]
    except Exception:
        return
    try:
        prim.abstract_eval(*avals, **params)
    except (ValueError, TypeError) as clearer:
        raise clearer from None


# --------------------------------------------------------------------------------------
# Traces and tracers
# --------------------------------------------------------------------------------------
class Trace:
    """Base of every transform's trace. ``parent`` is the trace its arithmetic runs on."""

    transform_name = "a transform"

    def __init__(self, parent):
        self.parent = parent
        self.valid = True

    def process(self, prim, args, params):
        raise NotImplementedError

    def concrete(self, tracer):
        """A concrete value for ``tracer`` (Python control flow), or raise."""
        raise ConcretizationError(
            f"{self.transform_name} cannot turn a traced {tracer.aval.str_short()} value "
            "into a concrete Python value")

    def split_args(self, args, tracer_type, fields):
        """Split ``args`` for a rule: ``(values, extras, active)``.

        An argument that is this trace's ``tracer_type`` contributes ``fields(tracer)``,
        a ``(value, extra)`` pair (e.g. primal and tangent); any other argument is a value
        from outside (a constant, or an ancestor trace's tracer) with extra ``None``.
        ``active`` says whether any argument was this trace's.
        """
        values = []
        extras = []
        active = False
        for a in args:
            if type(a) is tracer_type and a._trace is self:
                value, extra = fields(a)
                values.append(value)
                extras.append(extra)
                active = True
            else:
                if isinstance(a, Tracer):
                    self.check_foreign(a)
                values.append(a)
                extras.append(None)
        return values, extras, active

    def check_foreign(self, tracer):
        """A tracer of another trace reached this one: fine for an ancestor's tracer."""
        other = tracer._trace
        if not other.valid:
            raise _leaked(tracer)
        t = self.parent
        while t is not None:
            if t is other:
                return
            t = t.parent
        raise LeakedTracerError(
            f"a value traced by an inner {other.transform_name} reached the enclosing "
            f"{self.transform_name}; values of an inner transform must leave it as outputs")

    def invalidate(self):
        self.valid = False


class ArrayMethods:
    """Operators and ndarray-like methods shared by :class:`Array` and :class:`Tracer`.

    Every method is a thin call into ``functorch_lite.numpy``, so it is traced like any
    other ``fnp`` call.
    """

    __slots__ = ()
    __array_priority__ = 1000

    # The forward operators (+ - * / // % ** & | ^, unary -, == != < <= > >=, @) are the
    # fnp functions themselves, set by functorch_lite/numpy/_elementwise.py and _linalg_ops.py:
    # one call per operation. The reflected ones below swap the operands.
    def __radd__(self, o): return fnp.add(o, self)
    def __rsub__(self, o): return fnp.subtract(o, self)
    def __rmul__(self, o): return fnp.multiply(o, self)
    def __rtruediv__(self, o): return fnp.true_divide(o, self)
    def __rfloordiv__(self, o): return fnp.floor_divide(o, self)
    def __rmod__(self, o): return fnp.remainder(o, self)
    def __divmod__(self, o): return fnp.divmod(self, o)
    def __rpow__(self, o): return fnp.power(o, self)
    def __rmatmul__(self, o): return fnp.matmul(o, self)
    def __pos__(self): return self
    def __abs__(self): return fnp.abs(self)
    def __invert__(self): return fnp.invert(self)
    def __rand__(self, o): return fnp.bitwise_and(o, self)
    def __ror__(self, o): return fnp.bitwise_or(o, self)
    def __rxor__(self, o): return fnp.bitwise_xor(o, self)
    def __lshift__(self, o): return fnp.left_shift(self, o)
    def __rshift__(self, o): return fnp.right_shift(self, o)

    __hash__ = None  # like ndarray: arrays compare elementwise, so they are unhashable

    # indexing
    def __getitem__(self, idx): return fnp.getitem(self, idx)

    def __setitem__(self, idx, value):
        raise TypeError(
            f"{type(self).__name__} is immutable: `x[{_idx_str(idx)}] = v` is not supported. "
            f"Use `x = x.at[{_idx_str(idx)}].set(v)`, which returns an updated copy.")

    @property
    def at(self):
        """Functional index updates: ``x.at[idx].set(v)``, ``.add``, ``.multiply``,
        ``.min``, ``.max``, ``.get``."""
        return fnp.IndexUpdateHelper(self)

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d array")
        return shape[0]

    def __iter__(self):
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(shape[0]))

    # ndarray-like attributes and methods (shape/dtype/ndim/size: Array and Tracer)
    @property
    def T(self): return fnp.transpose(self)

    @property
    def mT(self): return fnp.swapaxes(self, -1, -2)

    @property
    def real(self): return fnp.real(self)

    @property
    def imag(self): return fnp.imag(self)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = shape[0]
        return fnp.reshape(self, shape, order=order)

    def astype(self, dtype, copy=True): return fnp.astype(self, dtype)
    def transpose(self, *axes): return fnp.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))  # noqa: E501
    def swapaxes(self, a, b): return fnp.swapaxes(self, a, b)
    def flatten(self): return fnp.ravel(self)
    def ravel(self): return fnp.ravel(self)
    def squeeze(self, axis=None): return fnp.squeeze(self, axis)
    def sum(self, axis=None, dtype=None, keepdims=False): return fnp.sum(self, axis, dtype=dtype, keepdims=keepdims)  # noqa: E501
    def prod(self, axis=None, dtype=None, keepdims=False): return fnp.prod(self, axis, dtype=dtype, keepdims=keepdims)  # noqa: E501
    def mean(self, axis=None, dtype=None, keepdims=False): return fnp.mean(self, axis, dtype=dtype, keepdims=keepdims)  # noqa: E501
    def var(self, axis=None, ddof=0, keepdims=False): return fnp.var(self, axis, ddof=ddof, keepdims=keepdims)  # noqa: E501
    def std(self, axis=None, ddof=0, keepdims=False): return fnp.std(self, axis, ddof=ddof, keepdims=keepdims)  # noqa: E501
    def max(self, axis=None, keepdims=False): return fnp.max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return fnp.min(self, axis, keepdims=keepdims)
    def argmax(self, axis=None, keepdims=False): return fnp.argmax(self, axis, keepdims=keepdims)  # noqa: E501
    def argmin(self, axis=None, keepdims=False): return fnp.argmin(self, axis, keepdims=keepdims)  # noqa: E501
    def all(self, axis=None, keepdims=False): return fnp.all(self, axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False): return fnp.any(self, axis, keepdims=keepdims)
    def cumsum(self, axis=None): return fnp.cumsum(self, axis)
    def cumprod(self, axis=None): return fnp.cumprod(self, axis)
    def clip(self, min=None, max=None): return fnp.clip(self, min, max)
    def round(self, decimals=0): return fnp.round(self, decimals)
    def dot(self, other): return fnp.dot(self, other)
    def conj(self): return fnp.conj(self)
    def take(self, indices, axis=None): return fnp.take(self, indices, axis=axis)
    def repeat(self, repeats, axis=None): return fnp.repeat(self, repeats, axis=axis)
    def diagonal(self, offset=0, axis1=0, axis2=1): return fnp.diagonal(self, offset, axis1, axis2)  # noqa: E501
    def trace(self, offset=0, axis1=0, axis2=1): return fnp.trace(self, offset, axis1, axis2)
    def sort(self, axis=-1): return fnp.sort(self, axis)
    def argsort(self, axis=-1): return fnp.argsort(self, axis)
    def nonzero(self): return fnp.nonzero(self)

    # NumPy interop: plain numpy calls on our values run the fnp equivalent (and trace).
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return fnp._dispatch_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return fnp._dispatch_function(func, args, kwargs)


def _idx_str(idx):
    if not isinstance(idx, tuple):
        idx = (idx,)

    def one(i):
        if isinstance(i, slice):
            parts = ["" if v is None else str(v) for v in (i.start, i.stop, i.step)]
            return ":".join(parts[:2] if i.step is None else parts)
        if i is Ellipsis:
            return "..."
        if isinstance(i, (int, np.integer)) or i is None:
            return str(i)
        return "idx"

    return ", ".join(one(i) for i in idx)


class _DeletedBuffer:
    """Stands in for the buffer of a deleted or donated :class:`Array`: any use of the
    array (its attributes, NumPy functions, ``fnp`` calls, ``jit``) raises a RuntimeError
    carrying ``message``, which says why the buffer is gone and what to use instead."""

    __slots__ = ("message",)

    def __init__(self, message):
        self.message = message

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(self.message)

    __getattr__ = __array__ = __array_ufunc__ = __array_function__ = _refuse
    __getitem__ = __len__ = __iter__ = __bool__ = _refuse


class Array(ArrayMethods):
    """An immutable array holding one backend buffer (``numpy.ndarray`` or ``cupy.ndarray``).

    Create arrays with ``fnp.array``/``fnp.asarray`` (or any ``fnp`` function); every
    ``fnp`` function returns one. Arrays never change: update them functionally with
    ``x.at[idx].set(v)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([1.0, 2.0, 3.0])
        >>> x * 2
        Array([2., 4., 6.], dtype=float32)
        >>> x.at[0].set(10.0)
        Array([10.,  2.,  3.], dtype=float32)
    """

    __slots__ = ("_buf",)

    def __init__(self, buf):
        self._buf = buf

    @property
    def shape(self): return self._buf.shape

    @property
    def dtype(self): return self._buf.dtype

    @property
    def ndim(self): return self._buf.ndim

    @property
    def size(self): return self._buf.size

    @property
    def aval(self): return ShapedArray(self._buf.shape, self._buf.dtype)

    @property
    def device(self):
        """``'cpu'`` or ``'cuda:N'``."""
        buf = self._buf
        if type(buf) is np.ndarray:
            return "cpu"
        return f"cuda:{buf.device.id}"

    @property
    def nbytes(self): return self._buf.nbytes

    @property
    def itemsize(self): return self._buf.itemsize

    def delete(self):
        """Free the buffer now; any later use of this array raises a RuntimeError.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> x = fnp.ones(2)
            >>> x.delete()
            >>> x.is_deleted(), x
            (True, <deleted Array>)
        """
        self._buf = _DeletedBuffer(
            "this Array was deleted (Array.delete()); it holds no value any more")

    def is_deleted(self):
        """Whether the buffer is gone: ``delete()`` was called, or the array was donated
        to a jitted function (``jit(f, donate_argnums=...)``)."""
        return type(self._buf) is _DeletedBuffer

    def block_until_ready(self):
        """Wait until the value is computed (a no-op on the CPU); returns ``self``."""
        if type(self._buf) is not np.ndarray:
            import cupy

            cupy.cuda.get_current_stream().synchronize()
        return self

    def __array__(self, dtype=None, copy=None):
        buf = self._buf
        if type(buf) is not np.ndarray:
            buf = buf.get()
        if copy:
            return np.array(buf, dtype=dtype, copy=True)
        view = buf.view()
        view.flags.writeable = False
        if dtype is not None and np.dtype(dtype) != view.dtype:
            return view.astype(dtype)
        return view

    def to_numpy(self):
        """A read-only NumPy view of the value (copied from the GPU if needed)."""
        return self.__array__()

    def tolist(self):
        return np.asarray(self.__array__()).tolist()

    def item(self, *args):
        return self.__array__().item(*args)

    def __bool__(self):
        return bool(self._scalar("bool"))

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __complex__(self):
        return complex(self._scalar("complex"))

    def __index__(self):
        if self._buf.dtype.kind not in "iub":
            raise TypeError(f"only integer arrays can be used as an index, got {self.dtype}")
        return int(self._scalar("int"))

    def _scalar(self, what):
        if self._buf.size != 1:
            raise TypeError(
                f"{what}() of an array with shape {self.shape} is ambiguous; only "
                "single-element arrays convert to Python scalars (use .any()/.all() for "
                "truth values)")
        return self.__array__().reshape(()).item()

    def __repr__(self):
        if type(self._buf) is _DeletedBuffer:
            return "<deleted Array>"
        buf = np.asarray(self.__array__())
        body = np.array2string(buf, separator=", ", prefix="Array(")
        return f"Array({body}, dtype={buf.dtype})"

    def __str__(self):
        return str(np.asarray(self.__array__()))

    def __format__(self, spec):
        if self._buf.ndim == 0:
            return format(self.item(), spec)
        return format(str(self), spec)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (Array, (np.asarray(self.__array__()).copy(),))


class Tracer(ArrayMethods):
    """A value inside a transform. Subclasses say what the trace keeps per value.

    Tracers support the same operators and methods as :class:`Array`; what they refuse is
    becoming a constant (``np.asarray``) or, under ``jit``, a Python value.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fl.vmap(lambda x: print(type(x).__name__, x.shape) or x)(fnp.ones((3, 2))).shape
        BatchTracer (2,)
        (3, 2)
    """

    __slots__ = ("_trace",)

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    def underlying_value(self):
        """The value this tracer wraps at its parent level (an array or a parent tracer),
        or None when there is none (a jit tracer holds only a graph variable). Used to put
        constants on the device of the data they meet."""
        return None

    @property
    def shape(self): return self.aval.shape

    @property
    def dtype(self): return self.aval.dtype

    @property
    def ndim(self): return len(self.aval.shape)

    @property
    def size(self): return self.aval.size

    @property
    def weak_type(self): return self.aval.weak_type

    def __array__(self, dtype=None, copy=None):
        trace = self._trace
        raise ConcretizationError(
            f"numpy cannot convert a value traced by {trace.transform_name} "
            f"({self.aval.str_short()}) into a constant ndarray. Call the functorch_lite.numpy "
            "(fnp) function instead of np.asarray/np.array, or return the value from the "
            "transformed function.")

    def _concrete(self):
        if not self._trace.valid:
            raise _leaked(self)
        return self._trace.concrete(self)

    def __bool__(self):
        return bool(self._concrete())

    def __float__(self):
        return float(self._concrete())

    def __int__(self):
        return int(self._concrete())

    def __complex__(self):
        return complex(self._concrete())

    def __index__(self):
        return self._concrete().__index__()

    def item(self, *args):
        return self._concrete().item(*args)

    def tolist(self):
        return self._concrete().tolist()

    def __repr__(self):
        return f"Traced<{self.aval.str_short()}>(by {self._trace.transform_name})"


# ``fnp`` is imported last: it builds on everything above (the methods resolve it lazily).
import functorch_lite.numpy as fnp  # noqa: E402

"""Array creation. Floats default to float32 (float64 under ``fl.config.enable_x64``)."""

from __future__ import annotations

import numpy as np

from functorch_lite.config import settings
from functorch_lite.core import Array, Tracer, asarray_default, aval_of, to_buffer, xp_of_buffer


def _placed(buf, like=None):
    """``buf`` as an Array on the device of ``like`` (an Array, or a tracer of autodiff or
    vmap, which holds one), else on the default device (``fl.config.set_default_device``);
    the CPU unless one of them says otherwise. Under jit a tracer holds no value: its
    constants go to the default device, where a GPU user's inputs live too."""
    if isinstance(like, Tracer):
        like = _traced_value(like)
    if type(like) is Array and type(like._buf) is not np.ndarray:
        return _beside(buf, like._buf)
    if settings.default_device is not None:
        from functorch_lite.devices import place_on_default_device

        return place_on_default_device(Array(buf))
    return Array(buf)


def _traced_value(tracer):
    """The concrete value under ``tracer`` (through nested transforms), or None under jit.

    Autodiff tracers hold their ``primal``, vmap's their batched ``val``; a jit tracer
    holds only a variable.
    """
    while isinstance(tracer, Tracer):
        tracer = tracer.underlying_value()
    return tracer


def _arange_like(like, n, dtype=None):
    """``arange(n)`` (int64 unless ``dtype``) on the device of ``like``: index arrays that
    composites and derivative rules build for an operand."""
    return _placed(np.arange(n, dtype=dtype), like)


def _eye_like(like, n, dtype=None):
    """The ``n x n`` identity (``like``'s dtype unless ``dtype``) on the device of ``like``."""
    return _placed(np.eye(n, dtype=aval_of(like).dtype if dtype is None else dtype), like)


def _beside(buf, other):
    """The NumPy array ``buf`` as an Array on the device (and backend) of ``other``, a
    buffer that is not a NumPy array."""
    if type(other).__module__.startswith("cupy"):
        from functorch_lite.devices import device_put

        return device_put(Array(buf), f"cuda:{other.device.id}")
    # Another backend (the tests' strict NumPy): its namespace makes its own arrays.
    return Array(xp_of_buffer(other).asarray(buf))


def _dtype(dtype, default=None):
    if dtype is None:
        return settings.float_dtype if default is None else default
    return np.dtype(dtype)


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def asarray(a, dtype=None, copy=None):
    """Convert to an :class:`~functorch_lite.Array` without copying when possible.

    Accepts Arrays, tracers, NumPy/CuPy arrays, Python scalars and nested lists (which
    may hold arrays and tracers: they are stacked). Python floats become float32 unless
    x64 is enabled; a NumPy array keeps its dtype.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.asarray([1.0, 2.0])
        Array([1., 2.], dtype=float32)
        >>> fnp.asarray([1, 2], dtype="float64")
        Array([1., 2.], dtype=float64)
    """
    from functorch_lite.numpy import astype, stack

    if isinstance(a, Tracer) or (isinstance(a, (list, tuple)) and any(
            isinstance(v, (Tracer, list, tuple)) for v in a) and _holds_tracer(a)):
        if isinstance(a, (list, tuple)):
            a = stack([asarray(v) for v in a])
        return a if dtype is None else astype(a, dtype)
    if type(a) is Array:
        return a if dtype is None else astype(a, dtype)
    buf = to_buffer(a)
    if type(buf) in (int, float, bool, complex):
        buf = asarray_default(buf)
    if dtype is not None and buf.dtype != np.dtype(dtype):
        buf = buf.astype(dtype)
    elif copy:
        buf = buf.copy()
    return _placed(buf) if type(buf) is np.ndarray else Array(buf)


def _holds_tracer(seq):
    for v in seq:
        if isinstance(v, Tracer):
            return True
        if isinstance(v, (list, tuple)) and _holds_tracer(v):
            return True
    return False


def array(object, dtype=None, copy=True):  # noqa: A002
    """Create an array (a copy of NumPy input, so later changes to it do not show).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.array([[1, 2], [3, 4]])
        Array([[1, 2],
               [3, 4]], dtype=int64)
    """
    is_raw = not isinstance(object, (Array, Tracer, list, tuple, int, float, bool, complex))
    return asarray(object, dtype=dtype, copy=copy and is_raw)


def zeros(shape, dtype=None):
    """An array of zeros.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.zeros((2,))
        Array([0., 0.], dtype=float32)
    """
    return _placed(np.zeros(_shape(shape), _dtype(dtype)))


def ones(shape, dtype=None):
    """An array of ones.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ones(2, dtype="int32")
        Array([1, 1], dtype=int32)
    """
    return _placed(np.ones(_shape(shape), _dtype(dtype)))


def empty(shape, dtype=None):
    """Like :func:`zeros` (arrays are immutable, so uninitialized memory is never useful).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.empty(2).shape
        (2,)
    """
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None):
    """An array filled with ``fill_value`` (its dtype unless ``dtype`` is given).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.full((2,), 7)
        Array([7, 7], dtype=int64)
    """
    from functorch_lite.numpy import broadcast_to

    if isinstance(fill_value, Tracer):
        return broadcast_to(fill_value if dtype is None else fill_value.astype(dtype), shape)
    value = asarray(fill_value, dtype=dtype)
    return _full(shape, value)


def _full(shape, value, like=None):
    buf = value._buf
    if type(buf) is not np.ndarray:
        buf = buf.get()
    return _placed(np.full(_shape(shape), buf, buf.dtype), like)


def _like(a, dtype, shape):
    aval = aval_of(a)
    return (_shape(shape) if shape is not None else aval.shape,
            np.dtype(dtype) if dtype is not None else (
                settings.float_dtype if aval.weak_type and aval.dtype.kind == "f"
                else aval.dtype))


def zeros_like(a, dtype=None, shape=None):
    """Zeros with the shape and dtype of ``a`` (a constant: no derivative flows through).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.zeros_like(fnp.array([1, 2]))
        Array([0, 0], dtype=int64)
    """
    shape_, dtype_ = _like(a, dtype, shape)
    return _placed(np.zeros(shape_, dtype_), like=a)


def ones_like(a, dtype=None, shape=None):
    """Ones with the shape and dtype of ``a``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ones_like(fnp.zeros((2,), dtype="float64"))
        Array([1., 1.], dtype=float64)
    """
    shape_, dtype_ = _like(a, dtype, shape)
    return _placed(np.ones(shape_, dtype_), like=a)


def empty_like(a, dtype=None, shape=None):
    """Like :func:`zeros_like`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.empty_like(fnp.zeros(3)).shape
        (3,)
    """
    return zeros_like(a, dtype, shape)


def full_like(a, fill_value, dtype=None, shape=None):
    """``fill_value`` with the shape and dtype of ``a``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.full_like(fnp.zeros(2), 3)
        Array([3., 3.], dtype=float32)
    """
    shape_, dtype_ = _like(a, dtype, shape)
    if isinstance(fill_value, Tracer):
        return full(shape_, fill_value, dtype_)
    return _full(shape_, asarray(fill_value, dtype=dtype_), like=a)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in ``[start, stop)``; floats default to float32.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.arange(3)
        Array([0, 1, 2], dtype=int64)
        >>> fnp.arange(0.0, 1.0, 0.5)
        Array([0. , 0.5], dtype=float32)
    """
    args = [v for v in (start, stop, step) if v is not None]
    for v in args:
        if isinstance(v, Tracer):
            raise TypeError("fnp.arange: start/stop/step must be concrete Python numbers "
                            "(the result's length must be known when tracing); pass them "
                            "as static arguments")
    buf = np.arange(*[v.item() if isinstance(v, Array) else v for v in args])
    if dtype is None and buf.dtype == np.float64:
        dtype = settings.float_dtype
    return _placed(buf if dtype is None else buf.astype(dtype))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced samples over ``[start, stop]``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linspace(0.0, 1.0, 3)
        Array([0. , 0.5, 1. ], dtype=float32)
    """
    if isinstance(start, Tracer) or isinstance(stop, Tracer):
        from functorch_lite.numpy import arange, expand_dims, moveaxis

        div = (num - 1) if endpoint else num
        step = (stop - start) / div if div > 0 else 0.0 * (stop - start)
        steps = arange(num, dtype=_dtype(dtype))
        steps = expand_dims(steps, tuple(range(1, np.ndim(start) + 1)))
        out = moveaxis(start + steps * step, 0, axis)
        return (out, step) if retstep else out
    starts = start._buf if isinstance(start, Array) else start
    stops = stop._buf if isinstance(stop, Array) else stop
    buf, step = np.linspace(starts, stops, num, endpoint=endpoint, retstep=True, axis=axis)
    out = _placed(buf.astype(_dtype(dtype)))
    return (out, step) if retstep else out


def eye(N, M=None, k=0, dtype=None):
    """A 2-D array with ones on the ``k``-th diagonal.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.eye(2)
        Array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    return _placed(np.eye(N, M, k, dtype=_dtype(dtype)))


def identity(n, dtype=None):
    """The ``n x n`` identity matrix.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.identity(2, dtype="int64")
        Array([[1, 0],
               [0, 1]], dtype=int64)
    """
    return eye(n, dtype=dtype)


def meshgrid(*xi, indexing="xy", sparse=False, copy=True):
    """Coordinate matrices from coordinate vectors, like ``numpy.meshgrid``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> xs, ys = fnp.meshgrid(fnp.arange(3), fnp.arange(2))
        >>> xs.shape, ys.shape
        ((2, 3), (2, 3))
    """
    from functorch_lite.numpy import broadcast_to, reshape

    if indexing not in ("xy", "ij"):
        raise ValueError(f"fnp.meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    n = len(xi)
    vecs = [asarray(x) for x in xi]
    shapes = [aval_of(v).size for v in vecs]
    out = []
    for i, v in enumerate(vecs):
        s = [1] * n
        s[i] = shapes[i]
        if indexing == "xy" and n > 1 and i < 2:
            s[0], s[1] = s[1], s[0]
        out.append(reshape(v, tuple(s)))
    if sparse:
        return out
    full_shape = list(shapes)
    if indexing == "xy" and n > 1:
        full_shape[0], full_shape[1] = full_shape[1], full_shape[0]
    return [broadcast_to(o, tuple(full_shape)) for o in out]


__all__ = ["asarray", "array", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
           "empty_like", "full_like", "arange", "linspace", "eye", "identity", "meshgrid"]

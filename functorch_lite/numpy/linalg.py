"""``fnp.linalg``: ``numpy.linalg`` functions that trace and differentiate.

Every function takes a matrix or a stack of matrices ``(..., m, n)`` (NumPy broadcasting
over the leading axes). Integer and boolean inputs are computed in float64, as NumPy does;
float32 stays float32. Derivatives are implemented for real inputs. Where a decomposition
is not unique its derivative is only defined where it is: distinct eigenvalues for
``eigh``, distinct nonzero singular values for ``svd``, full rank for ``qr``.

Example:
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> a = fnp.array([[2.0, 1.0], [1.0, 3.0]])
    >>> fnp.linalg.det(a)
    Array(5., dtype=float32)
    >>> fl.grad(lambda m: fnp.linalg.slogdet(m)[1])(a)  # d log|det A| / dA = A^-T
    Array([[ 0.6, -0.2],
           [-0.2,  0.4]], dtype=float32)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.linalg import LinAlgError

from functorch_lite.core import aval_of, bind
from functorch_lite.numpy._linalg_ops import matmul, matrix_transpose, outer, tensordot
from functorch_lite.primitives import linalg as lp


def _fnp():
    import functorch_lite.numpy as fnp

    return fnp


class SlogdetResult(NamedTuple):
    sign: object
    logabsdet: object


class QRResult(NamedTuple):
    Q: object
    R: object


class EighResult(NamedTuple):
    eigenvalues: object
    eigenvectors: object


class SVDResult(NamedTuple):
    U: object
    S: object
    Vh: object


_LINALG_DTYPES = {np.dtype(t) for t in ("float32", "float64", "complex64", "complex128")}


def _as_inexact(name, x):
    """``x`` as an array whose dtype numpy.linalg computes in (ints, bools -> float64)."""
    fnp = _fnp()
    x = x if hasattr(x, "shape") and hasattr(x, "dtype") else fnp.asarray(x)
    dtype = aval_of(x).dtype
    if dtype.kind in "biu":
        return fnp.astype(x, np.float64)
    if dtype not in _LINALG_DTYPES:
        raise TypeError(f"fnp.linalg.{name}: dtype {dtype} is not supported (numpy.linalg "
                        "computes in float32, float64, complex64 or complex128); cast the "
                        "input with .astype(fnp.float32)")
    return x


def _matrices(name, a, square=True):
    """Check that ``a`` is a (stack of) matrices, square if asked; cast to inexact."""
    a = _as_inexact(name, a)
    shape = aval_of(a).shape
    if square and (len(shape) < 2 or shape[-1] != shape[-2]):
        raise ValueError(lp.square_error(name, shape))
    if len(shape) < 2:
        raise ValueError(f"fnp.linalg.{name}: expected a matrix or a stack of them (shape "
                         f"(..., m, n)), got shape {shape}")
    return a


# --------------------------------------------------------------------------------------
# Inverses and determinants
# --------------------------------------------------------------------------------------
def inv(a):
    """Inverse of a square matrix (or of each matrix in a stack).

    The derivative is ``d inv(A) = -inv(A) dA inv(A)``. Singular input raises
    ``LinAlgError``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.inv(fnp.array([[2.0, 0.0], [0.0, 4.0]]))
        Array([[0.5 , 0.  ],
               [0.  , 0.25]], dtype=float32)
    """
    return bind(lp.inv_p, _matrices("inv", a))


def solve(a, b):
    """Solve ``a @ x = b`` for ``x``.

    Args:
        a: ``(..., n, n)``.
        b: a vector ``(n,)`` or a stack of matrices ``(..., n, k)`` (NumPy 2 rules); the
            leading axes broadcast against those of ``a``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.solve(fnp.array([[2.0, 0.0], [0.0, 4.0]]), fnp.array([2.0, 2.0]))
        Array([1. , 0.5], dtype=float32)
    """
    fnp = _fnp()
    a = _matrices("solve", a)
    b = _as_inexact("solve", b)
    sa, sb = aval_of(a).shape, aval_of(b).shape
    n = sa[-1]
    if len(sb) == 1:
        if sb[0] != n:
            raise ValueError(lp.solve_error(sa, sb))
        x = bind(lp.solve_p, a, fnp.reshape(b, (n, 1)))
        return fnp.reshape(x, tuple(x.shape[:-1]))
    if len(sb) < 2 or sb[-2] != n:
        raise ValueError(lp.solve_error(sa, sb))
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(lp.solve_error(sa, sb)) from None
    return bind(lp.solve_p, a, b)


def det(a):
    """Determinant. The derivative is ``det(A) * tr(inv(A) dA)``: it needs an invertible
    ``A`` (at a singular matrix it raises ``LinAlgError``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.det(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        Array(-2., dtype=float32)
    """
    return bind(lp.det_p, _matrices("det", a))


def slogdet(a):
    """Sign and natural log of the absolute value of the determinant.

    Stable where ``det`` over- or underflows. ``sign`` has no derivative; the derivative
    of ``logabsdet`` is ``tr(inv(A) dA)``.

    Returns:
        ``SlogdetResult(sign, logabsdet)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> sign, logabsdet = fnp.linalg.slogdet(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> sign, logabsdet
        (Array(-1., dtype=float32), Array(0.6931472, dtype=float32))
    """
    return SlogdetResult(*bind(lp.slogdet_p, _matrices("slogdet", a)))


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """Moore-Penrose pseudo-inverse through the SVD; singular values at most
    ``rcond * max(s)`` count as zero.

    ``rcond`` (NumPy's default ``1e-15``) or its NumPy-2 name ``rtol`` sets the cutoff.
    Differentiable where the SVD is (distinct nonzero singular values).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.pinv(fnp.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        Array([[1. , 0. , 0. ],
               [0. , 0.5, 0. ]], dtype=float32)
    """
    fnp = _fnp()
    if rcond is not None and rtol is not None:
        raise ValueError("fnp.linalg.pinv: give rcond or rtol, not both")
    if hermitian:
        raise NotImplementedError("fnp.linalg.pinv: hermitian=True is not supported")
    cutoff_ratio = rtol if rtol is not None else (1e-15 if rcond is None else rcond)
    u, s, vh = svd(a, full_matrices=False)
    cutoff = cutoff_ratio * fnp.max(s, axis=-1, keepdims=True)
    large = s > cutoff
    s_inv = fnp.where(large, 1 / fnp.where(large, s, 1), 0)
    return matmul(matrix_transpose(vh), fnp.expand_dims(s_inv, -1) * matrix_transpose(u))


# --------------------------------------------------------------------------------------
# Decompositions
# --------------------------------------------------------------------------------------
def cholesky(a, /, *, upper=False):
    """Cholesky factor of a symmetric positive-definite matrix: ``a = L @ L.T``.

    Only the lower triangle of ``a`` is read. The derivative treats ``a`` as symmetric: it
    is the derivative of ``cholesky((a + a.T) / 2)`` (so gradients are symmetric).

    Args:
        a: ``(..., n, n)`` symmetric positive definite.
        upper: return the upper factor ``L.T`` instead.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.cholesky(fnp.array([[4.0, 2.0], [2.0, 5.0]]))
        Array([[2., 0.],
               [1., 2.]], dtype=float32)
    """
    low = bind(lp.cholesky_p, _matrices("cholesky", a))
    return matrix_transpose(low) if upper else low


def qr(a, mode="reduced"):
    """QR decomposition ``a = Q @ R`` (``Q`` orthonormal columns, ``R`` upper triangular).

    Args:
        a: ``(..., m, n)``.
        mode: ``"reduced"`` (``Q`` is ``(..., m, k)``, ``R`` ``(..., k, n)``, ``k = min(m,
            n)``) or ``"r"`` (``R`` only). ``"complete"`` is supported when ``m <= n``.

    Returns:
        ``QRResult(Q, R)`` (or ``R`` for ``mode="r"``). Derivatives: for ``m >= n`` and
        full rank.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> q, r = fnp.linalg.qr(fnp.array([[3.0, 1.0], [4.0, 2.0]]))
        >>> bool(fnp.allclose(q @ r, fnp.array([[3.0, 1.0], [4.0, 2.0]])))
        True
    """
    a = _matrices("qr", a, square=False)
    m, n = aval_of(a).shape[-2:]
    if mode not in ("reduced", "r", "complete") or (mode == "complete" and m > n):
        raise NotImplementedError(
            f"fnp.linalg.qr: mode={mode!r} is not supported for shape {aval_of(a).shape}; "
            "use mode='reduced' or mode='r'")
    q, r = bind(lp.qr_p, a)
    return r if mode == "r" else QRResult(q, r)


def eigh(a, UPLO="L"):  # noqa: N803 - NumPy's argument name
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix.

    Only the ``UPLO`` triangle of ``a`` is read. The derivative treats ``a`` as symmetric
    (the derivative of ``eigh((a + a.T) / 2)``) and uses ``1 / (w_j - w_i)``: it is
    infinite for repeated eigenvalues, whose eigenvectors are not unique. Eigenvector
    signs are arbitrary; differentiate quantities that do not depend on them.

    Returns:
        ``EighResult(eigenvalues, eigenvectors)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> w, v = fnp.linalg.eigh(fnp.array([[2.0, 1.0], [1.0, 2.0]]))
        >>> w
        Array([1., 3.], dtype=float32)
    """
    return EighResult(*bind(lp.eigh_p, _matrices("eigh", a), UPLO=_uplo("eigh", UPLO)))


def eigvalsh(a, UPLO="L"):  # noqa: N803
    """Eigenvalues (ascending) of a symmetric matrix; see :func:`eigh`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.eigvalsh(fnp.array([[2.0, 1.0], [1.0, 2.0]]))
        Array([1., 3.], dtype=float32)
    """
    return bind(lp.eigvalsh_p, _matrices("eigvalsh", a), UPLO=_uplo("eigvalsh", UPLO))


def _uplo(name, uplo):
    if uplo not in ("L", "U"):
        raise ValueError(f"fnp.linalg.{name}: UPLO must be 'L' or 'U', got {uplo!r}")
    return uplo


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition ``a = U @ diag(S) @ Vh`` (``S`` descending).

    Derivatives need ``full_matrices=False`` (or a square ``a``) and distinct nonzero
    singular values: otherwise ``U`` and ``Vh`` are not unique. Their signs are arbitrary
    (flipping a column of ``U`` with the row of ``Vh`` gives the same product);
    differentiate quantities that do not depend on them.

    Args:
        a: ``(..., m, n)``.
        full_matrices: ``U`` is ``(..., m, m)`` and ``Vh`` ``(..., n, n)`` when True
            (NumPy's default), ``(..., m, k)`` and ``(..., k, n)`` with ``k = min(m, n)``
            when False.
        compute_uv: return only ``S`` when False (same as :func:`svdvals`).
        hermitian: not supported (must be False).

    Returns:
        ``SVDResult(U, S, Vh)``, or ``S``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> u, s, vh = fnp.linalg.svd(fnp.array([[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]]),
        ...                           full_matrices=False)
        >>> s
        Array([3., 2.], dtype=float32)
    """
    if hermitian:
        raise NotImplementedError("fnp.linalg.svd: hermitian=True is not supported")
    if not compute_uv:
        return svdvals(a)
    a = _matrices("svd", a, square=False)
    return SVDResult(*bind(lp.svd_p, a, full_matrices=bool(full_matrices)))


def svdvals(x, /):
    """Singular values, descending (faster than :func:`svd` when that is all you need).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.svdvals(fnp.array([[0.0, 2.0], [1.0, 0.0]]))
        Array([2., 1.], dtype=float32)
    """
    return bind(lp.svdvals_p, _matrices("svdvals", x, square=False))


# --------------------------------------------------------------------------------------
# Norms (composites)
# --------------------------------------------------------------------------------------
def _safe_two_norm(x, axes, keepdims):
    """``sqrt(sum(|x|^2))`` whose gradient at 0 is 0, not nan (the double-``where``)."""
    fnp = _fnp()
    if x.dtype.kind == "c":
        x = fnp.abs(x)
    squares = fnp.sum(x * x, axis=axes, keepdims=keepdims)
    zero = squares == 0
    return fnp.where(zero, 0, fnp.sqrt(fnp.where(zero, 1, squares)))


def _vector_norm(x, ord, axes, keepdims):  # noqa: A002
    fnp = _fnp()
    if ord is None or ord == 2:
        return _safe_two_norm(x, axes, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"fnp.linalg.norm: ord={ord!r} is not a vector norm; use None, 1, "
                         "2, inf, -inf, 0 or another number")
    if ord == np.inf:
        return fnp.max(fnp.abs(x), axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return fnp.min(fnp.abs(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return fnp.astype(fnp.sum(x != 0, axis=axes, keepdims=keepdims),
                          np.finfo(x.dtype).dtype)
    if ord == 1:
        return fnp.sum(fnp.abs(x), axis=axes, keepdims=keepdims)
    return fnp.sum(fnp.abs(x) ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):  # noqa: A002
    fnp = _fnp()
    rows, cols = axes
    if rows == cols:
        raise ValueError(f"fnp.linalg.norm: the two matrix axes {axes} must differ")
    if ord in (None, "fro", "f"):
        return _safe_two_norm(x, axes, keepdims)
    if ord in (2, -2, "nuc"):
        s = svdvals(fnp.moveaxis(x, (rows, cols), (-2, -1)))
        out = (fnp.max(s, axis=-1) if ord == 2 else fnp.min(s, axis=-1) if ord == -2
               else fnp.sum(s, axis=-1))
        return fnp.expand_dims(out, tuple(sorted(axes))) if keepdims else out
    if ord in (1, -1, np.inf, -np.inf):
        # 1: the largest column sum |x| (sum over rows); inf: the largest row sum.
        summed, reduced = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = fnp.sum(fnp.abs(x), axis=summed, keepdims=True)
        out = (fnp.max if ord > 0 else fnp.min)(sums, axis=reduced, keepdims=True)
        return out if keepdims else fnp.squeeze(out, axis=axes)
    raise ValueError(f"fnp.linalg.norm: ord={ord!r} is not a matrix norm; use None, 'fro', "
                     "'nuc', 1, -1, 2, -2, inf or -inf")


def _norm_axes(x, axis):
    nd = aval_of(x).ndim
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for ax in axes:
        if not -nd <= ax < nd:
            raise ValueError(f"fnp.linalg.norm: axis {ax} is out of range for an array of "
                             f"shape {aval_of(x).shape}")
    return tuple(int(ax) % nd for ax in axes)


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """Vector or matrix norm, like ``numpy.linalg.norm``.

    With ``axis=None`` a 1-D input gets a vector norm, a 2-D input a matrix norm, and
    ``ord=None`` means the 2-norm of the flattened input (any rank). An int ``axis`` gives
    vector norms, a pair of axes matrix norms.

    Args:
        x: the array (ints are computed in float64).
        ord: vectors: ``None``/2, 1, ``inf``, ``-inf``, 0 (count of nonzeros) or any number
            ``p``; matrices: ``None``/``'fro'``, ``'nuc'``, 1, -1, 2, -2, ``inf``, ``-inf``.
        axis: None, an int or a pair of ints.
        keepdims: keep the reduced axes with length 1.

    The gradient of the 2-norm at 0 is 0 (not nan).

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.norm(fnp.array([3.0, 4.0]))
        Array(5., dtype=float32)
        >>> fnp.linalg.norm(fnp.array([[1.0, -2.0], [3.0, 4.0]]), ord=1)
        Array(6., dtype=float32)
        >>> fl.grad(fnp.linalg.norm)(fnp.zeros(2))
        Array([0., 0.], dtype=float32)
    """
    x = _as_inexact("norm", x)
    nd = aval_of(x).ndim
    if axis is None:
        if ord is None or (ord in ("fro", "f") and nd == 2) or (ord == 2 and nd == 1):
            return _safe_two_norm(x, None, keepdims)
        if nd not in (1, 2):
            raise ValueError(f"fnp.linalg.norm: ord={ord!r} needs a 1-D or 2-D input (or an "
                             f"axis argument), got shape {aval_of(x).shape}")
        axis = tuple(range(nd))
    axes = _norm_axes(x, axis)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"fnp.linalg.norm: axis must be an int or a pair of ints, got {axis!r}")


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    """Vector norm over ``axis`` (all axes, flattened, when None), NumPy 2's
    ``linalg.vector_norm``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.vector_norm(fnp.ones((2, 2)), ord=1)
        Array(4., dtype=float32)
    """
    x = _as_inexact("vector_norm", x)
    nd = aval_of(x).ndim
    axes = tuple(range(nd)) if axis is None else _norm_axes(x, axis)
    return _vector_norm(x, ord, axes, keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    """Matrix norm over the last two axes, NumPy 2's ``linalg.matrix_norm``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.matrix_norm(fnp.ones((3, 2, 2)))
        Array([2., 2., 2.], dtype=float32)
    """
    x = _as_inexact("matrix_norm", x)
    nd = aval_of(x).ndim
    if nd < 2:
        raise ValueError(f"fnp.linalg.matrix_norm: expected rank >= 2, got shape "
                         f"{aval_of(x).shape}")
    return _matrix_norm(x, ord, (nd - 2, nd - 1), keepdims)


# --------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------
def multi_dot(arrays, *, out=None):
    """Product of a chain of matrices, multiplied in the cheapest order (``numpy``'s
    ``multi_dot``). The first and last arrays may be 1-D (row / column vectors).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.linalg.multi_dot([fnp.ones((10, 100)), fnp.ones((100, 5)), fnp.ones(5)]).shape
        (10,)
    """
    fnp = _fnp()
    if out is not None:
        raise TypeError("fnp.linalg.multi_dot: out= is not supported (arrays are immutable)")
    arrays = [fnp.asarray(a) for a in arrays]
    if len(arrays) < 2:
        raise ValueError("fnp.linalg.multi_dot: expected at least two arrays")
    first_1d, last_1d = arrays[0].ndim == 1, arrays[-1].ndim == 1
    if first_1d:
        arrays[0] = fnp.reshape(arrays[0], (1, -1))
    if last_1d:
        arrays[-1] = fnp.reshape(arrays[-1], (-1, 1))
    for i, a in enumerate(arrays):
        if a.ndim != 2:
            raise ValueError(f"fnp.linalg.multi_dot: array {i} has shape {a.shape}; only the "
                             "first and last may be 1-D, the others must be 2-D")
    order = _chain_order([a.shape[0] for a in arrays] + [arrays[-1].shape[1]])

    def product(i, j):
        if i == j:
            return arrays[i]
        k = order[i][j]
        return matmul(product(i, k), product(k + 1, j))

    result = product(0, len(arrays) - 1)
    shape = ((() if first_1d else result.shape[:1]) + (() if last_1d else result.shape[1:]))
    return fnp.reshape(result, tuple(shape)) if (first_1d or last_1d) else result


def _chain_order(dims):
    """The matrix-chain split points: ``order[i][j]`` is where to split ``i..j``."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    order = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = float("inf")
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], order[i][j] = c, k
    return order


__all__ = ["LinAlgError", "SlogdetResult", "QRResult", "EighResult", "SVDResult", "inv",
           "solve", "det", "slogdet", "pinv", "cholesky", "qr", "eigh", "eigvalsh", "svd",
           "svdvals", "norm", "vector_norm", "matrix_norm", "multi_dot", "matmul",
           "matrix_transpose", "outer", "tensordot"]

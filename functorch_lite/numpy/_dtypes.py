"""Dtype helpers with NumPy names (promotion follows NumPy 2 / NEP 50)."""

from __future__ import annotations

import numpy as np

from functorch_lite.core import aval_of


def result_type(*arrays_and_dtypes):
    """The dtype NumPy's promotion gives; Python scalars are weak.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.result_type(fnp.zeros(2), 2.0)
        dtype('float32')
    """
    ops = []
    for a in arrays_and_dtypes:
        if isinstance(a, (np.dtype, type, str)):
            ops.append(np.dtype(a))
        else:
            ops.append(aval_of(a).promotion_operand())
    return np.result_type(*ops)


def issubdtype(arg1, arg2):
    """``numpy.issubdtype``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.issubdtype(fnp.float32, fnp.floating)
        True
    """
    return np.issubdtype(arg1, arg2)


def can_cast(from_, to, casting="safe"):
    """``numpy.can_cast`` on dtypes.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.can_cast(fnp.int32, fnp.float64)
        True
    """
    return np.can_cast(from_, to, casting)


floating, integer, inexact, number, signedinteger, unsignedinteger, complexfloating = (
    np.floating, np.integer, np.inexact, np.number, np.signedinteger, np.unsignedinteger,
    np.complexfloating)

__all__ = ["result_type", "issubdtype", "can_cast", "floating", "integer", "inexact",
           "number", "signedinteger", "unsignedinteger", "complexfloating"]

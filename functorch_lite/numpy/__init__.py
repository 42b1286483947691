"""``functorch_lite.numpy`` (``fnp``): NumPy-compatible functions that trace.

Every function accepts ``fl.Array``, tracers, NumPy/CuPy arrays, Python scalars and lists,
and returns ``fl.Array`` (or a tracer inside a transform). Names and semantics are NumPy's.

Example:
    >>> import functorch_lite.numpy as fnp
    >>> x = fnp.linspace(0.0, 1.0, 3)
    >>> fnp.sum(fnp.sin(x) ** 2 + fnp.cos(x) ** 2)
    Array(3., dtype=float32)
"""

from numpy import (  # noqa: F401  (dtypes and constants: NumPy's own objects, re-exported)
    bool_,
    complex64,
    complex128,
    dtype,
    e,
    euler_gamma,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    inf,
    int8,
    int16,
    int32,
    int64,
    nan,
    newaxis,
    pi,
    uint8,
    uint16,
    uint32,
    uint64,
)
from numpy import bool_ as bool  # noqa: A004, F401

# Primitives register themselves on import; the namespace above is thin over them.
import functorch_lite.primitives  # noqa: E402, F401
from functorch_lite.numpy import linalg  # noqa: E402, F401
from functorch_lite.numpy._creation import *  # noqa: F403
from functorch_lite.numpy._dtypes import *  # noqa: F403
from functorch_lite.numpy._elementwise import *  # noqa: F403
from functorch_lite.numpy._indexing import *  # noqa: F403
from functorch_lite.numpy._interop import dispatch_function as _dispatch_function  # noqa: E402, F401
from functorch_lite.numpy._interop import dispatch_ufunc as _dispatch_ufunc  # noqa: E402, F401
from functorch_lite.numpy._linalg_ops import *  # noqa: F403
from functorch_lite.numpy._reductions import *  # noqa: F403
from functorch_lite.numpy._shape import *  # noqa: F403

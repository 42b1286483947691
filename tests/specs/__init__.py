"""Registry of primitive test specs: how to draw valid inputs and what NumPy says.

Each family module (``specs/elementwise.py`` ...) calls :func:`spec` for every function it
covers; ``tests/test_primitive_properties.py`` runs every property over every spec, so a
new primitive is tested the moment its spec is declared. ``covers`` names the primitives a
spec exercises; ``test_every_primitive_has_a_spec`` fails for a primitive nobody covers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SPECS: list[Spec] = []


@dataclasses.dataclass
class Spec:
    name: str
    fn: Callable            # the functorch_lite function under test, positional array args
    ref: Callable           # the NumPy reference
    args: Callable          # args(dtype) -> strategy of a tuple of numpy arrays
    covers: tuple = ()      # primitive names exercised
    dtypes: tuple = ("float32", "float64")
    diff_argnums: tuple | None = None   # None: every float argument; () : not differentiable
    rtol: float = 1e-5
    atol: float = 1e-6
    grad_rtol: float = 1e-5
    grad_atol: float = 1e-6
    fd_eps: float = 1e-6
    check_dtype: bool = True
    extra: dict = dataclasses.field(default_factory=dict)

    def __repr__(self):
        return f"Spec({self.name})"


def load_all() -> list[Spec]:
    """Import every family module of this package (each declares its specs) and return
    the registry."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return SPECS


def spec(name, fn, ref, args, covers=None, **kw) -> Spec:
    s = Spec(name, fn, ref, args, covers=tuple(covers or (name,)), **kw)
    SPECS.append(s)
    return s


# --- strategies ---------------------------------------------------------------------------
def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def floats_in(lo, hi):
    """Floats in [lo, hi] representable in float32 (so one strategy serves both widths)."""
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if lo32 < lo:
        lo32 = np.nextafter(lo32, np.float32(np.inf))
    if hi32 > hi:
        hi32 = np.nextafter(hi32, np.float32(-np.inf))
    return st.floats(float(lo32), float(hi32), allow_nan=False, allow_infinity=False,
                     width=32)


def array(dtype, shape, lo=-3.0, hi=3.0, avoid_zero=False):
    """Arrays of ``dtype``/``shape`` with values in ``[lo, hi]`` (ints: rounded)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        elements = floats_in(lo, hi)
        if avoid_zero:
            elements = elements.filter(lambda v: abs(v) > 0.1)
    elif dtype.kind in "iu":
        elements = st.integers(int(max(lo, np.iinfo(dtype).min)), int(hi))
        if avoid_zero:
            elements = elements.filter(lambda v: v != 0)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        raise ValueError(dtype)
    return hnp.arrays(dtype, shape, elements=elements)


def unary_args(lo=-3.0, hi=3.0, avoid_zero=False, **shape_kw):
    def args(dtype):
        return shapes(**shape_kw).flatmap(
            lambda s: st.tuples(array(dtype, s, lo, hi, avoid_zero)))
    return args


def broadcast_pair_args(lo=-3.0, hi=3.0, avoid_zero_second=False, lo2=None, hi2=None):
    """Two arrays whose shapes broadcast together (sometimes different ranks, some 1s)."""
    def args(dtype):
        pair = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                 max_side=4)
        return pair.flatmap(lambda bs: st.tuples(
            array(dtype, bs.input_shapes[0], lo, hi),
            array(dtype, bs.input_shapes[1], lo if lo2 is None else lo2,
                  hi if hi2 is None else hi2, avoid_zero_second)))
    return args


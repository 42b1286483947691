"""Specs for the linear algebra family: matmul, einsum, the products built on them and
``fnp.linalg``.

Matrices are drawn as a seed plus small sizes and built with NumPy's generator (so they can
be conditioned); ``valid`` predicates keep derivative checks away from the points where a
decomposition's derivative does not exist (singular matrices, repeated eigenvalues or
singular values, ties in a max). Eigenvector and singular-vector signs are arbitrary, so
the specs of eigh, svd and qr check sign-invariant functions of the outputs (``V * V``,
``U * U``, ``Q * Q``, ``R * R``, ``Q @ R``).
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import functorch_lite.numpy as fnp
from functorch_lite.numpy._creation import _eye_like
from specs import array, spec

DECOMP = dict(grad_rtol=1e-4, grad_atol=1e-5)


def _random(rng, dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.randint(-3, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def seeded(build, **sizes):
    """``args(dtype)``: draw a seed and ``sizes`` (strategies), then
    ``build(rng, dtype, **sizes)`` returns the tuple of arrays."""
    def args(dtype):
        draws = st.fixed_dictionaries(dict(seed=st.integers(0, 2**16), **sizes))
        return draws.map(lambda d: build(np.random.RandomState(d["seed"]), dtype,
                                         **{k: v for k, v in d.items() if k != "seed"}))
    return args


SIDE = st.integers(1, 4)
# Decompositions: at most two matrices per call, so every one of them can be valid.
BATCH = hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=2)


# --- conditions for derivative checks ------------------------------------------------------
def _min_singular(a):
    return np.linalg.svd(np.asarray(a, np.float64), compute_uv=False).min(initial=np.inf)


def _well_conditioned(a, *rest):
    return _min_singular(a) > 0.2


def _gaps(values):
    """Smallest gap between sorted values along the last axis (inf for one value)."""
    v = np.sort(np.asarray(values, np.float64), axis=-1)
    return np.diff(v, axis=-1).min(initial=np.inf)


def _sym(m):
    return m + np.swapaxes(m, -1, -2)


def _spd(m):
    n = m.shape[-1]
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n, dtype=m.dtype)


def _fsym(m):
    return m + fnp.swapaxes(m, -1, -2)


def _fspd(m):
    n = m.shape[-1]
    return m @ fnp.swapaxes(m, -1, -2) + n * _eye_like(m, n, m.dtype)  # on m's device


# --- matmul and the products ----------------------------------------------------------------
MATMUL_SHAPES = hnp.mutually_broadcastable_shapes(
    signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2, max_side=4)


def _matmul_args(dtype):
    return MATMUL_SHAPES.flatmap(lambda bs: st.tuples(
        *(array(dtype, s) for s in bs.input_shapes)))


spec("matmul", fnp.matmul, np.matmul, _matmul_args,
     dtypes=("float32", "float64", "int64"))


def _arrays(*shapes):
    """``args`` giving arrays of ``shapes[i](n)`` for four sizes ``n`` drawn in 1..4."""
    def build(rng, dtype, n):
        return tuple(_random(rng, dtype, shape(n)) for shape in shapes)
    return seeded(build, n=st.tuples(SIDE, SIDE, SIDE, SIDE))


INT_TOO = ("float32", "float64", "int64")


def _dots(dot):
    return lambda x, y, v, s: (dot(x, y), dot(x, v), dot(s, x), dot(v, v))


spec("dot", _dots(fnp.dot), _dots(np.dot),
     _arrays(lambda n: (n[0], n[1], n[2]), lambda n: (n[3], n[2], n[1]), lambda n: (n[2],),
             lambda n: ()), dtypes=INT_TOO)


def _products(m):
    return lambda a, b, c: (m.vdot(a, c), m.inner(a, b), m.outer(a, b), m.kron(a, b),
                            m.matrix_transpose(a))


spec("products[vdot,inner,outer,kron,matrix_transpose]", _products(fnp), _products(np),
     _arrays(lambda n: (n[0], n[1]), lambda n: (n[2], n[1]), lambda n: (n[1], n[0])),
     dtypes=INT_TOO, covers=())


def _tensordots(tensordot):
    return lambda x, y, z: (tensordot(x, y), tensordot(x, z, axes=([0, 2], [2, 0])),
                            tensordot(x, z, axes=1))


spec("tensordot", _tensordots(fnp.tensordot), _tensordots(np.tensordot),
     _arrays(lambda n: (n[0], n[1], n[2]), lambda n: (n[1], n[2], n[3]),
             lambda n: (n[2], n[3], n[0])), dtypes=INT_TOO)


def _chain(rng, dtype, dims):
    first = _random(rng, dtype, (dims[1],))
    middle = [_random(rng, dtype, (dims[i], dims[i + 1])) for i in range(1, 4)]
    return (first, *middle)


spec("multi_dot", lambda *xs: fnp.linalg.multi_dot(xs), lambda *xs: np.linalg.multi_dot(xs),
     seeded(_chain, dims=st.lists(SIDE, min_size=5, max_size=5)), covers=("matmul",))


# --- einsum: a few specs, each a group of subscripts ----------------------------------------
# (subscripts, operand shape templates): letters take drawn sizes, digits are sizes.
EINSUMS = {
    "contractions": [("ij,jk->ik", "ij,jk"), ("ij,jk", "ij,jk"), ("bij,bjk->bik", "bij,bjk"),
                     ("i,i->", "i,i"), ("ij->", "ij"), ("ij->ji", "ij"),
                     ("ij,jk,kl->il", "ij,jk,kl"), ("ij,k->i", "ij,k")],
    "broadcasting": [("...ij,...jk->...ik", "abij,1bjk"), ("...ij,jk", "aij,jk"),
                     ("ij,ij->i", "i1,ij"), ("i...->...", "ia"), ("ij,k->ijk", "ij,k")],
    "diagonals": [("ii->i", "ii"), ("ii", "ii"), ("iij,jk->ki", "iij,jk")],
}


def _einsum_group(group):
    def build(rng, dtype, sizes):
        size = dict(zip("abijkl", sizes, strict=True))
        return tuple(_random(rng, dtype, tuple(int(c) if c.isdigit() else size[c] for c in t))
                     for _, templates in group for t in templates.split(","))
    return seeded(build, sizes=st.tuples(*[SIDE] * 6))


def _einsums(einsum, group):
    def fn(*xs):
        out, xs = [], list(xs)
        for subscripts, templates in group:
            count = templates.count(",") + 1
            out.append(einsum(subscripts, *xs[:count]))
            del xs[:count]
        return tuple(out)
    return fn


for _name, _group in EINSUMS.items():
    spec(f"einsum[{_name}]", _einsums(fnp.einsum, _group), _einsums(np.einsum, _group),
         _einsum_group(_group), covers=("einsum",), dtypes=INT_TOO, atol=1e-5)


# --- inverses and determinants --------------------------------------------------------------
def _square(rng, dtype, b, n):
    return (_random(rng, dtype, b + (n, n)),)


SQUARE = seeded(_square, b=BATCH, n=SIDE)
spec("inv", fnp.linalg.inv, np.linalg.inv, SQUARE, extra={"valid": _well_conditioned},
     rtol=1e-4, atol=1e-5, **DECOMP)
spec("det", fnp.linalg.det, np.linalg.det, SQUARE, extra={"valid": _well_conditioned},
     **DECOMP)
spec("slogdet", fnp.linalg.slogdet, np.linalg.slogdet, SQUARE,
     extra={"valid": _well_conditioned}, **DECOMP)


def _solve_args(rng, dtype, b, n, k, vector):
    a = _random(rng, dtype, b + (n, n))
    rhs = _random(rng, dtype, (n,) if vector else b[1:] + (n, k))
    return a, rhs


spec("solve", fnp.linalg.solve, np.linalg.solve,
     seeded(_solve_args, b=BATCH, n=SIDE, k=SIDE, vector=st.booleans()),
     extra={"valid": _well_conditioned}, rtol=1e-4, atol=1e-5, **DECOMP)


def _pinv_valid(a):
    s = np.linalg.svd(np.asarray(a, np.float64), compute_uv=False)
    return s.min(initial=np.inf) > 0.2 and _gaps(s) > 0.2


def _rect(rng, dtype, b, m, n):
    return (_random(rng, dtype, b + (m, n)),)


RECT = seeded(_rect, b=BATCH, m=SIDE, n=SIDE)
spec("pinv", fnp.linalg.pinv, np.linalg.pinv, RECT, extra={"valid": _pinv_valid},
     rtol=1e-4, atol=1e-5, covers=("svd",), **DECOMP)


# --- decompositions ---------------------------------------------------------------------------
def _cholesky_both(cholesky, spd):
    return lambda m: (cholesky(spd(m)), cholesky(spd(m), upper=True))


spec("cholesky", _cholesky_both(fnp.linalg.cholesky, _fspd),
     _cholesky_both(np.linalg.cholesky, _spd), SQUARE, rtol=1e-4, atol=1e-5, **DECOMP)


def _tall(rng, dtype, b, m, n):
    m, n = max(m, n), min(m, n)
    return (_random(rng, dtype, b + (m, n)),)


def _qr_parts(q, r, matmul):
    return q * q, r * r, matmul(q, r)


spec("qr", lambda a: _qr_parts(*fnp.linalg.qr(a), fnp.matmul),
     lambda a: _qr_parts(*np.linalg.qr(a), np.matmul),
     seeded(_tall, b=BATCH, m=SIDE, n=SIDE), extra={"valid": _well_conditioned},
     rtol=1e-4, atol=1e-5, **DECOMP)
spec("qr_any_shape", lambda a: (*fnp.linalg.qr(a), fnp.linalg.qr(a, mode="r")),
     lambda a: (*np.linalg.qr(a), np.linalg.qr(a, mode="r")), RECT, diff_argnums=(),
     covers=("qr",))


def _eigh_valid(m):
    return _gaps(np.linalg.eigvalsh(_sym(np.asarray(m, np.float64)))) > 0.1


def _eighs(m, eigh, sym):
    w, v = eigh(sym(m))
    return w, v * v, eigh(sym(m), UPLO="U")[0]


spec("eigh", lambda m: _eighs(m, fnp.linalg.eigh, _fsym),
     lambda m: _eighs(m, np.linalg.eigh, _sym), SQUARE,
     extra={"valid": _eigh_valid}, rtol=1e-4, atol=1e-5, **DECOMP)
spec("eigvalsh", lambda m: fnp.linalg.eigvalsh(_fsym(m)),
     lambda m: np.linalg.eigvalsh(_sym(m)), SQUARE, extra={"valid": _eigh_valid},
     rtol=1e-4, atol=1e-5, **DECOMP)


def _svd_valid(a):
    s = np.linalg.svd(np.asarray(a, np.float64), compute_uv=False)
    return s.min(initial=np.inf) > 0.1 and _gaps(s) > 0.1


def _svd_parts(u, s, vh):
    return u * u, s, vh * vh


spec("svd", lambda a: _svd_parts(*fnp.linalg.svd(a, full_matrices=False)),
     lambda a: _svd_parts(*np.linalg.svd(a, full_matrices=False)), RECT,
     extra={"valid": _svd_valid}, rtol=1e-4, atol=1e-5, **DECOMP)
spec("svd_full_square", lambda a: _svd_parts(*fnp.linalg.svd(a)),
     lambda a: _svd_parts(*np.linalg.svd(a)), SQUARE, extra={"valid": _svd_valid},
     rtol=1e-4, atol=1e-5, covers=("svd",), **DECOMP)
spec("svd_full", lambda a: tuple(fnp.linalg.svd(a)), lambda a: tuple(np.linalg.svd(a)),
     RECT, diff_argnums=(), covers=("svd",))
spec("svdvals", fnp.linalg.svdvals, np.linalg.svdvals, RECT, extra={"valid": _svd_valid},
     rtol=1e-4, atol=1e-5, **DECOMP)


# --- norms (composites), every order in one spec per kind ------------------------------------
def _no_ties(values):
    """The largest and smallest ``values`` along the last axis are each attained once."""
    v = np.sort(np.asarray(values, np.float64), axis=-1)
    if v.shape[-1] < 2:
        return True
    return bool(np.all(v[..., -1] - v[..., -2] > 0.05) and np.all(v[..., 1] - v[..., 0] > 0.05))


def _away_from_zero(x):
    return bool(np.all(np.abs(np.asarray(x)) > 0.05))


VECTOR_ORDS = [None, 1, 2, np.inf, -np.inf, 3, 0.5, 0]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


def _norms(norm, ords, axis):
    return lambda x: tuple(norm(x, ord=o, axis=axis, keepdims=o == 1) for o in ords)


spec("norm[vector]", _norms(fnp.linalg.norm, VECTOR_ORDS, -1),
     _norms(np.linalg.norm, VECTOR_ORDS, -1), RECT,
     extra={"valid": lambda x: _away_from_zero(x) and _no_ties(np.abs(x))}, covers=(),
     rtol=1e-5, atol=1e-5)


def _matrix_norms_valid(x):
    x = np.asarray(x, np.float64)
    return (_svd_valid(x) and _away_from_zero(x) and _no_ties(np.abs(x).sum(axis=-2))
            and _no_ties(np.abs(x).sum(axis=-1)))


spec("norm[matrix]", _norms(fnp.linalg.norm, MATRIX_ORDS, (-2, -1)),
     _norms(np.linalg.norm, MATRIX_ORDS, (-2, -1)), RECT,
     extra={"valid": _matrix_norms_valid}, covers=(), rtol=1e-4, atol=1e-5, **DECOMP)
spec("norm", fnp.linalg.norm, np.linalg.norm,
     seeded(lambda rng, dtype, shape: (_random(rng, dtype, shape),),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
     dtypes=INT_TOO, covers=(), rtol=1e-5, atol=1e-5)


def _numpy2_norms(linalg):
    return lambda x: (linalg.vector_norm(x, axis=(0, -1), ord=1), linalg.vector_norm(x),
                      linalg.matrix_norm(x))


spec("norm[vector_norm,matrix_norm]", _numpy2_norms(fnp.linalg), _numpy2_norms(np.linalg),
     RECT, covers=(), extra={"valid": _away_from_zero}, rtol=1e-5, atol=1e-5)

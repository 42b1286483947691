"""Linear algebra primitives: matmul, einsum, and the matrix decompositions.

``matmul`` is the hottest primitive of the library (every dense layer), so its impl is the
bare backend call and its 1-D operand promotion lives in ``fnp.matmul``: the primitive only
sees operands of rank >= 2. Its batching rule and its vjp fold a batch into the rows of one
2-D GEMM whenever the other operand is a shared matrix (one BLAS call on ``(B*m, k)`` is
1.5-2x faster than a 3-D ``matmul``, see PERF-NOTES).

The decompositions (inv, solve, det, slogdet, cholesky, qr, eigh, eigvalsh, svd, svdvals)
take stacks of matrices ``(..., m, n)`` like ``numpy.linalg`` and have closed-form
derivative rules, written here with ``fnp`` and the primitives themselves so that they are
differentiable again. Notation in the rules: ``mT`` swaps the last two axes, ``sym(X) =
(X + X^T) / 2``, ``<X, Y> = sum(X * Y)``. Derivatives are for real inputs; the rules of the
symmetric decompositions (cholesky, eigh, eigvalsh) treat the input as symmetric, i.e. they
differentiate ``f(sym(A))``, like JAX and PyTorch.

A primitive with several results (slogdet, qr, eigh, svd) returns a tuple from its impl and
its jvp, receives its cotangent as a tuple with ``None`` for zero entries, and its batching
rule returns a tuple of output batch dims.
"""

from __future__ import annotations

import functools
import string

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, aval_of, bind
from functorch_lite.numpy._creation import _eye_like, _placed
from functorch_lite.primitives.rules import unbroadcast


# --------------------------------------------------------------------------------------
# Helpers shared by the rules
# --------------------------------------------------------------------------------------
def _mT(x):
    return fnp.swapaxes(x, -1, -2)


def _mm(a, b):
    return bind(matmul_p, a, b)


def _sym(x):
    return (x + _mT(x)) * 0.5


def _move_to_front(x, bdim):
    return x if bdim == 0 else fnp.moveaxis(x, bdim, 0)


def _batch_front(x, bdim, rank):
    """Batch axis of ``x`` first, then singleton axes up to ``rank`` per-example axes.

    An unbatched operand (``bdim`` None) is left alone: it broadcasts from the right.
    """
    if bdim is None:
        return x
    x = _move_to_front(x, bdim)
    pad = rank - (x.ndim - 1)
    if pad:
        x = fnp.reshape(x, (x.shape[0],) + (1,) * pad + tuple(x.shape[1:]))
    return x


def _diag_embed(v):
    """``(..., k) -> (..., k, k)`` with ``v`` on the diagonal."""
    k = v.shape[-1]
    return fnp.expand_dims(v, -2) * _eye_like(v, k)


def _diagonal(x):
    """The diagonal of the last two (equal) axes, ``(..., k, k) -> (..., k)``."""
    return fnp.sum(x * _eye_like(x, x.shape[-1]), axis=-1)


def _band_weights(x, below, on, above):
    """``(n, n)`` weights for the trailing ``(n, n)`` matrices of ``x`` (its dtype and
    device): ``below`` under the diagonal, ``on`` on it, ``above`` over it."""
    n = x.shape[-1]
    rows, cols = np.arange(n).reshape(n, 1), np.arange(n)
    weights = np.where(rows > cols, below, np.where(rows == cols, on, above))
    return _placed(weights.astype(x.dtype), like=x)


def _inverse_gaps(values):
    """``F[..., i, j] = 1 / (values_j - values_i)`` off the diagonal, 0 on it.

    Infinite where two values coincide: the derivatives that use it are undefined there.
    """
    eye = _eye_like(values, values.shape[-1])
    gaps = fnp.expand_dims(values, -2) - fnp.expand_dims(values, -1)
    return 1 / (gaps + eye) - eye


def _real_only(name, x):
    if aval_of(x).dtype.kind == "c":
        raise NotImplementedError(f"fnp.linalg.{name}: derivatives of complex inputs are not "
                                  "implemented; differentiate a real-valued formulation")


def _unary_batch(prim, n_out=1):
    """vmap rule of a decomposition: numpy.linalg already maps over leading axes."""
    def batch(args, dims, **params):
        out = bind(prim, _move_to_front(args[0], dims[0]), **params)
        return out, ((0,) * n_out if prim.multiple_results else 0)
    return batch


def _square_eval(name):
    def check(a):
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            raise ValueError(square_error(name, a.shape))
    return check


def square_error(name, shape):
    return (f"fnp.linalg.{name}: expected a square matrix or a stack of them (shape "
            f"(..., n, n)), got shape {tuple(shape)}")


def _real_dtype(dtype):
    return np.finfo(dtype).dtype if dtype.kind == "c" else dtype


# --------------------------------------------------------------------------------------
# matmul: operands of rank >= 2, batch axes broadcast (NumPy semantics)
# --------------------------------------------------------------------------------------
def matmul_error(shape_a, shape_b):
    return (f"fnp.matmul: shapes {tuple(shape_a)} and {tuple(shape_b)} are not aligned: the "
            "last axis of the first operand must equal the second-to-last axis of the second "
            "(the only axis of a 1-D operand), and the leading (batch) axes must broadcast. "
            "Transpose or reshape one operand (e.g. fnp.swapaxes(x, -1, -2) or x.mT).")


def _outer_product_kind(xp, shape_a, shape_b):
    """How to compute a batched outer product ``(..., m, 1) @ (..., 1, n)`` (per-example
    weight gradients under vmap): ``"multiply"``, a key of :data:`_OUTER_EINSUMS`, or None
    when the operands are not of that form and ``matmul`` should run.

    NumPy's batched matmul runs one tiny GEMM per matrix (3-4x slower than the broadcast
    multiply), and the broadcast multiply pays ~25 ns per inner loop of ``n`` elements. An
    einsum whose innermost output axis is the longer of ``m`` and ``n`` runs fewer, longer
    inner loops: on 256 examples, 1.4x faster than the multiply at m = n = 64, 3.4x at
    m = 64, n = 10 (measured on the 2-vCPU EPYC). When m > n (``"einsum_t"``) the result is
    the transposed view of an ``(..., n, m)`` array. Each element is the one product
    ``a * b`` either way. (An outer product has no contracted axis, so einsum's default
    path, not a BLAS one, is the fast one here.) On CuPy the broadcast multiply is one
    kernel already.
    """
    if len(shape_a) <= 2 or shape_a[-1] != 1 or len(shape_b) < 2 or shape_b[-2] != 1:
        return None
    if xp is not np:
        return "multiply"
    return "einsum_t" if shape_a[-2] > shape_b[-1] else "einsum"


# kind -> (einsum subscripts, whether the result is swapped back to (..., m, n))
_OUTER_EINSUMS = {"einsum": ("...ik,...kj->...ij", False),
                  "einsum_t": ("...ik,...kj->...ji", True)}


def _matmul_impl(xp, a, b):
    try:
        # (a 2-D matmul, the common case, skips the call)
        kind = _outer_product_kind(xp, a.shape, b.shape) if a.ndim > 2 else None
        if kind is None:
            return xp.matmul(a, b)
        if kind == "multiply":
            return xp.multiply(a, b)
        subscripts, swapped = _OUTER_EINSUMS[kind]
        out = np.einsum(subscripts, a, b)
        return out.swapaxes(-1, -2) if swapped else out
    except ValueError:
        raise ValueError(matmul_error(a.shape, b.shape)) from None


def _matmul_eval(a, b):
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(matmul_error(a.shape, b.shape))
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(matmul_error(a.shape, b.shape)) from None
    dtype = np.result_type(a.promotion_operand(), b.promotion_operand())
    return ShapedArray(batch + (a.shape[-2], b.shape[-1]), dtype)


def _fold_rows(x, w):
    """``x @ w`` for a shared matrix ``w`` as ONE 2-D GEMM: the leading axes of ``x`` join
    its rows (``(..., m, k) -> (... * m, k)``)."""
    if x.ndim == 2:
        return _mm(x, w)
    k = x.shape[-1]
    out = _mm(fnp.reshape(x, (-1, k)), w)
    return fnp.reshape(out, tuple(x.shape[:-1]) + (w.shape[-1],))


def _matmul_jvp(primals, tangents):
    (a, b), (a_dot, b_dot) = primals, tangents
    out = _mm(a, b)
    t = None if a_dot is None else _mm(a_dot, b)
    if b_dot is not None:
        term = _mm(a, b_dot)
        t = term if t is None else t + term
    return out, t


def _matmul_vjp_eager(ct, a, b, needs):
    """The 2-D case on NumPy buffers of one dtype (eager reverse mode, the common case):
    ``ct @ b.T`` and ``a.T @ ct`` straight away, what the general rule computes through
    fnp; None when it does not apply."""
    if a.ndim != 2 or b.ndim != 2 or not ct.dtype == a.dtype == b.dtype:
        return None
    return (ct @ b.T if needs[0] else None, a.T @ ct if needs[1] else None)


def _matmul_vjp(ct, out, primals, needs):
    a, b = primals
    if type(ct) is np.ndarray and type(a) is np.ndarray and type(b) is np.ndarray:
        cts = _matmul_vjp_eager(ct, a, b, needs)  # run on buffers (vjp_on_buffers)
        if cts is not None:
            return cts
    a_aval, b_aval = aval_of(a), aval_of(b)
    ct_a = ct_b = None
    if needs[0]:
        # ct @ b^T, summed over the batch axes that a was broadcast along.
        g = _fold_rows(ct, _mT(b)) if b_aval.ndim == 2 else _mm(ct, _mT(b))
        ct_a = unbroadcast(g, a_aval)
    if needs[1]:
        if b_aval.ndim == 2 and a_aval.ndim > 2:
            # a^T @ ct summed over the batch: one GEMM over the stacked rows of a and ct.
            k, n = b_aval.shape
            g = _mm(_mT(fnp.reshape(a, (-1, k))), fnp.reshape(ct, (-1, n)))
        else:
            g = _mm(_mT(a), ct)
        ct_b = unbroadcast(g, b_aval)
    return ct_a, ct_b


def _matmul_batch(args, dims):
    (a, b), (a_bdim, b_bdim) = args, dims
    if b_bdim is None and b.ndim == 2:
        # Only the left operand is batched: the batch joins the rows of one GEMM. A batch
        # axis on the contracted (last) axis must move out of the way first.
        if a_bdim == a.ndim - 1:
            a, a_bdim = fnp.moveaxis(a, a_bdim, 0), 0
        return _fold_rows(a, b), a_bdim
    if a_bdim is None and a.ndim == 2 and b.ndim == 3:
        # Only the right (per-example 2-D) operand is batched: the batch joins its columns.
        if b_bdim == 0:
            b, b_bdim = fnp.moveaxis(b, 0, 1), 1
        k = b.shape[0]
        out = _mm(a, fnp.reshape(b, (k, -1)))
        return fnp.reshape(out, (a.shape[0],) + tuple(b.shape[1:])), b_bdim
    rank = max(a.ndim - (a_bdim is not None), b.ndim - (b_bdim is not None))
    return _mm(_batch_front(a, a_bdim, rank), _batch_front(b, b_bdim, rank)), 0


def _matmul_emit(em, eqn, ins, outs, indent):
    # The jit decides at compile time what the impl decides per call; operands are passed
    # as they are (a transposed view goes to BLAS as is: as fast as a copy, minus the copy).
    kind = _outer_product_kind(em.xp, eqn.inputs[0].aval.shape, eqn.inputs[1].aval.shape)
    if kind in _OUTER_EINSUMS:
        subscripts, swapped = _OUTER_EINSUMS[kind]
        em.globals["np"] = np
        em.emit(f"{outs[0]} = np.einsum({subscripts!r}, {ins[0]}, {ins[1]})"
                + (".swapaxes(-1, -2)" if swapped else ""), indent)
    else:
        fn = "multiply" if kind == "multiply" else "matmul"
        em.emit(f"{outs[0]} = xp.{fn}({ins[0]}, {ins[1]})", indent)


matmul_p = Primitive("matmul", _matmul_impl, _matmul_eval, jvp=_matmul_jvp, vjp=_matmul_vjp,
                     batch=_matmul_batch, emit="matmul")
matmul_p.emit_code = _matmul_emit
matmul_p.vjp_reads = "inputs"  # the product itself is not needed for its derivatives
matmul_p.vjp_on_buffers = True


# --------------------------------------------------------------------------------------
# einsum: canonical subscripts only ("ab,bc->ac": explicit output, no ellipsis, no
# spaces); ``fnp.einsum`` puts user subscripts into that form.
# --------------------------------------------------------------------------------------
def _split_subscripts(subscripts):
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def _label_sizes(subs, shapes):
    """Each label's size, broadcast over the operands (a size-1 axis stretches)."""
    sizes = {}
    for sub, shape in zip(subs, shapes, strict=True):
        for label, d in zip(sub, shape, strict=True):
            sizes[label] = d if sizes.get(label, 1) == 1 else sizes[label]
    return sizes


@functools.lru_cache(maxsize=1024)
def _einsum_code(subscripts, shapes):
    """How to compute an einsum: a Python expression over the operands ``{0}, {1}, ...``.

    NumPy's einsum is slow on products: its default path loops in C without BLAS (5-20x
    slower than matmul), and ``optimize=True`` spends ~20 us choosing a contraction order
    on every call and still loops without BLAS on batched products (1.7-2x matmul). So a
    product of two operands becomes one matmul, and one operand a sum and a transpose
    (:func:`_product_code`, :func:`_reduction_code`). What is left (three or more operands,
    diagonals, labels that broadcast) runs ``einsum(..., optimize=True)``.
    """
    inputs, output = _split_subscripts(subscripts)
    code = None
    if len(inputs) == 2:
        code = _product_code(inputs, output, shapes)
    elif len(inputs) == 1:
        code = _reduction_code(inputs[0], output)
    if code is None:
        operands = ", ".join(f"{{{i}}}" for i in range(len(inputs)))
        code = f"xp.einsum({subscripts!r}, {operands}, optimize=True)"
    return code


def _product_code(inputs, output, shapes):
    """A two-operand einsum as one matmul, or None.

    The labels of the output that both operands have are batch axes; those only one
    operand has become its rows (or columns); the labels both have and the output lacks
    are contracted. Each operand is transposed (a view) and reshaped to ``(batch, rows,
    inner)`` / ``(batch, inner, columns)``, so a shared operand (no batch labels) makes
    one GEMM over all rows. Where the output wants the columns first, the operands swap
    (``(A B)^T = B^T A^T``) instead of transposing the result.
    """
    (sa, sb), size = inputs, {}
    for sub, shape in zip(inputs, shapes, strict=True):
        if len(set(sub)) < len(sub):
            return None  # a diagonal
        for label, d in zip(sub, shape, strict=True):
            if size.setdefault(label, d) != d:
                return None  # a size-1 axis broadcasts
    if any(c not in output and c not in sb for c in sa) or \
            any(c not in output and c not in sa for c in sb):
        return None  # a label summed within one operand
    batch = "".join(c for c in output if c in sa and c in sb)
    rows = "".join(c for c in output if c not in sb)
    cols = "".join(c for c in output if c not in sa)
    inner = "".join(c for c in sa if c in sb and c not in output)
    a, b = "{0}", "{1}"
    if output == batch + cols + rows != batch + rows + cols:
        a, b, sa, sb, rows, cols = b, a, sb, sa, cols, rows

    def count(labels):
        n = 1
        for c in labels:
            n *= size[c]
        return n

    lead = (count(batch),) if count(batch) != 1 else ()
    x = _operand_code(a, sa, batch + rows + inner, lead + (count(rows), count(inner)), size)
    y = _operand_code(b, sb, batch + inner + cols, lead + (count(inner), count(cols)), size)
    # Nothing to contract: an outer product, where NumPy's batched matmul would run one
    # tiny GEMM per matrix.
    code = f"xp.{'multiply' if count(inner) == 1 else 'matmul'}({x}, {y})"
    shape = tuple(size[c] for c in batch + rows + cols)
    if lead + (count(rows), count(cols)) != shape:
        code += f".reshape({shape})"
    return code + _transpose_code(batch + rows + cols, output)


def _operand_code(name, sub, order, shape, size):
    """Operand ``name`` (labels ``sub``) with its axes in ``order``, reshaped to ``shape``."""
    code = name + _transpose_code(sub, order)
    if tuple(size[c] for c in order) != shape:
        code += f".reshape({shape})"
    return code


def _reduction_code(sub, output):
    """A one-operand einsum without diagonals as a sum (in the operand's dtype, like
    einsum) and a transpose, or None."""
    if len(set(sub)) < len(sub):
        return None
    code = "{0}"
    summed = tuple(k for k, c in enumerate(sub) if c not in output)
    if summed:
        code += f".sum(axis={summed}, dtype={{0}}.dtype)"
        sub = "".join(c for c in sub if c in output)
    return code + _transpose_code(sub, output)


def _transpose_code(have, want):
    if have == want:
        return ""
    return f".transpose({tuple(have.index(c) for c in want)})"


@functools.lru_cache(maxsize=1024)
def _einsum_function(subscripts, shapes):
    """:func:`_einsum_code` compiled once, so eager calls run what the jit writes."""
    names = [f"x{i}" for i in range(len(shapes))]
    code = _einsum_code(subscripts, shapes).format(*names)
    return eval(f"lambda xp, {', '.join(names)}: {code}")  # noqa: S307 - our own text


def _einsum_impl(xp, *operands, subscripts):
    return _einsum_function(subscripts, tuple(x.shape for x in operands))(xp, *operands)


def _einsum_emit(em, eqn, ins, outs, indent):
    code = _einsum_code(eqn.params["subscripts"], tuple(v.aval.shape for v in eqn.inputs))
    em.emit(f"{outs[0]} = {em.normalize(code.format(*ins), eqn.outputs[0].aval)}", indent)


def _einsum_eval(*avals, subscripts):
    inputs, output = _split_subscripts(subscripts)
    sizes = _label_sizes(inputs, [a.shape for a in avals])
    dtype = np.result_type(*(a.promotion_operand() for a in avals))
    return ShapedArray(tuple(sizes[c] for c in output), dtype,
                       all(a.weak_type for a in avals))


def _einsum_jvp(primals, tangents, *, subscripts):
    out = bind(einsum_p, *primals, subscripts=subscripts)
    t_out = None
    for i, t in enumerate(tangents):
        if t is None:
            continue
        operands = list(primals)
        operands[i] = t
        term = bind(einsum_p, *operands, subscripts=subscripts)
        t_out = term if t_out is None else t_out + term
    return out, t_out


def _einsum_operand_ct(ct, primals, i, inputs, output):
    """Cotangent of operand ``i``: an einsum of ``ct`` with the other operands.

    A label of operand ``i`` that the others and the output lack (or have at another size:
    broadcasting) is summed away in that einsum and broadcast back afterwards; a repeated
    label (a diagonal) gets a fresh label tied to it by an identity matrix.
    """
    sub = inputs[i]
    shape = aval_of(primals[i]).shape
    others = [(s, x) for j, (s, x) in enumerate(zip(inputs, primals, strict=True)) if j != i]
    elsewhere = _label_sizes([output] + [s for s, _ in others],
                             [ct.shape] + [aval_of(x).shape for _, x in others])
    used = set("".join(inputs))
    fresh = iter(c for c in string.ascii_letters if c not in used)
    factors, operands = [output] + [s for s, _ in others], [ct] + [x for _, x in others]
    target, seen = [], set()
    for label, d in zip(sub, shape, strict=True):
        repeated = sub.count(label) > 1
        if label in seen:
            twin = next(fresh)
            factors.append(label + twin)
            operands.append(_eye_like(ct, d))
            target.append(twin)
            continue
        seen.add(label)
        if repeated and elsewhere.get(label, d) != d:
            raise NotImplementedError(
                f"fnp.einsum: the derivative of {','.join(inputs)}->{output} is not "
                f"implemented: the repeated label {label!r} of operand {i} broadcasts")
        keep = repeated or elsewhere.get(label) == d
        target.append(label if keep else None)
    kept = "".join(t for t in target if t is not None)
    g = bind(einsum_p, *operands, subscripts=",".join(factors) + "->" + kept)
    if len(kept) != len(target):
        kept_shape = (1 if t is None else d for t, d in zip(target, shape, strict=True))
        g = fnp.reshape(g, tuple(kept_shape))
        g = fnp.broadcast_to(g, shape)
    return unbroadcast(g, aval_of(primals[i]))


def _einsum_vjp(ct, out, primals, needs, *, subscripts):
    inputs, output = _split_subscripts(subscripts)
    return tuple(_einsum_operand_ct(ct, primals, i, inputs, output) if need else None
                 for i, need in enumerate(needs))


def _einsum_batch(args, dims, *, subscripts):
    inputs, output = _split_subscripts(subscripts)
    label = next(c for c in string.ascii_letters if c not in subscripts)
    operands, subs = [], []
    for x, bdim, sub in zip(args, dims, inputs, strict=True):
        if bdim is None:
            operands.append(x)
            subs.append(sub)
        else:
            operands.append(_move_to_front(x, bdim))
            subs.append(label + sub)
    return bind(einsum_p, *operands,
                subscripts=",".join(subs) + "->" + label + output), 0


einsum_p = Primitive("einsum", _einsum_impl, _einsum_eval, jvp=_einsum_jvp, vjp=_einsum_vjp,
                     batch=_einsum_batch, emit="einsum")
einsum_p.emit_code = _einsum_emit


# --------------------------------------------------------------------------------------
# inv:  d inv(A) = -inv(A) dA inv(A)
# --------------------------------------------------------------------------------------
def _inv_eval(a):
    _square_eval("inv")(a)
    return ShapedArray(a.shape, a.dtype)


def _inv_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    out = bind(inv_p, a)
    return out, -_mm(_mm(out, a_dot), out)


def _inv_vjp(ct, out, primals, needs):
    out_t = _mT(out)
    return (-_mm(_mm(out_t, ct), out_t),)


inv_p = Primitive("inv", lambda xp, a: xp.linalg.inv(a), _inv_eval, jvp=_inv_jvp,
                  vjp=_inv_vjp, emit="linalg.inv")
inv_p.batch = _unary_batch(inv_p)


# --------------------------------------------------------------------------------------
# solve: x = A^-1 b for b of shape (..., n, k) (fnp.linalg.solve turns a vector b into a
# column). dx = A^-1 (db - dA x); ct_b = A^-T ct, ct_A = -ct_b x^T.
# --------------------------------------------------------------------------------------
def _solve_eval(a, b):
    _square_eval("solve")(a)
    if b.ndim < 2 or b.shape[-2] != a.shape[-1]:
        raise ValueError(solve_error(a.shape, b.shape))
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(solve_error(a.shape, b.shape)) from None
    dtype = np.result_type(a.dtype, b.dtype)
    return ShapedArray(batch + tuple(b.shape[-2:]), dtype)


def solve_error(shape_a, shape_b):
    return (f"fnp.linalg.solve: a of shape {tuple(shape_a)} and b of shape {tuple(shape_b)} "
            "do not fit: b must be (n,) or (..., n, k) for a of shape (..., n, n), with "
            "broadcastable leading axes")


def _solve_jvp(primals, tangents):
    (a, b), (a_dot, b_dot) = primals, tangents
    x = bind(solve_p, a, b)
    rhs = b_dot
    if a_dot is not None:
        rhs = -_mm(a_dot, x) if rhs is None else rhs - _mm(a_dot, x)
    return x, bind(solve_p, a, rhs)


def _solve_vjp(ct, out, primals, needs):
    a, b = primals
    ct_b = bind(solve_p, _mT(a), ct)
    ct_a = unbroadcast(-_mm(ct_b, _mT(out)), aval_of(a)) if needs[0] else None
    return ct_a, (unbroadcast(ct_b, aval_of(b)) if needs[1] else None)


def _solve_batch(args, dims):
    (a, b), (a_bdim, b_bdim) = args, dims
    if a_bdim is None and a.ndim == 2 and b.ndim == 3:
        # One factorization of the shared matrix: the batch joins the right-hand sides.
        if b_bdim != 2:
            b = fnp.moveaxis(b, b_bdim, 2)
        n, k, size = b.shape
        x = bind(solve_p, a, fnp.reshape(b, (n, k * size)))
        return fnp.reshape(x, (n, k, size)), 2
    rank = max(a.ndim - (a_bdim is not None), b.ndim - (b_bdim is not None))
    return bind(solve_p, _batch_front(a, a_bdim, rank), _batch_front(b, b_bdim, rank)), 0


solve_p = Primitive("solve", lambda xp, a, b: xp.linalg.solve(a, b), _solve_eval,
                    jvp=_solve_jvp, vjp=_solve_vjp, batch=_solve_batch, emit="linalg.solve")


# --------------------------------------------------------------------------------------
# det and slogdet:  d log|det A| = tr(A^-1 dA) = <A^-T, dA>;  d det A = det A * tr(A^-1 dA)
# --------------------------------------------------------------------------------------
def _det_eval(a):
    _square_eval("det")(a)
    return ShapedArray(a.shape[:-2], a.dtype)


def _trace_of_solve(a, a_dot):
    """``tr(A^-1 dA)`` over the last two axes."""
    return fnp.sum(_mT(bind(inv_p, a)) * a_dot, axis=(-2, -1))


def _det_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    out = bind(det_p, a)
    return out, out * _trace_of_solve(a, a_dot)


def _det_vjp(ct, out, primals, needs):
    (a,) = primals
    scale = fnp.expand_dims(ct * out, (-2, -1))
    return (scale * _mT(bind(inv_p, a)),)


det_p = Primitive("det", lambda xp, a: xp.linalg.det(a), _det_eval, jvp=_det_jvp,
                  vjp=_det_vjp, emit="linalg.det")
det_p.batch = _unary_batch(det_p)


def _slogdet_impl(xp, a):
    sign, logabsdet = xp.linalg.slogdet(a)
    return sign, logabsdet


def _slogdet_eval(a):
    _square_eval("slogdet")(a)
    batch = a.shape[:-2]
    return ShapedArray(batch, a.dtype), ShapedArray(batch, _real_dtype(a.dtype))


def _slogdet_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    sign, logabsdet = bind(slogdet_p, a)
    # The sign is piecewise constant: no derivative.
    return (sign, logabsdet), (None, _trace_of_solve(a, a_dot))


def _slogdet_vjp(ct, out, primals, needs):
    (a,) = primals
    ct_logabsdet = ct[1]
    if ct_logabsdet is None:
        return (None,)
    return (fnp.expand_dims(ct_logabsdet, (-2, -1)) * _mT(bind(inv_p, a)),)


slogdet_p = Primitive("slogdet", _slogdet_impl, _slogdet_eval, jvp=_slogdet_jvp,
                      vjp=_slogdet_vjp, emit="linalg.slogdet", multiple_results=True)
slogdet_p.batch = _unary_batch(slogdet_p, 2)


# --------------------------------------------------------------------------------------
# cholesky: A = L L^T. With Phi(X) = the lower triangle of X with its diagonal halved,
# dL = L Phi(L^-1 dA L^-T) and ct_A = sym(L^-T Phi(L^T ct) L^-1) (Murray 2016).
# --------------------------------------------------------------------------------------
def _phi(x):
    return x * _band_weights(x, 1.0, 0.5, 0.0)


def _cholesky_eval(a):
    _square_eval("cholesky")(a)
    return ShapedArray(a.shape, a.dtype)


def _cholesky_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    _real_only("cholesky", a)
    low = bind(cholesky_p, a)
    # L^-1 S L^-T for S = sym(dA), by two solves with L (S is symmetric).
    half = _mT(bind(solve_p, low, _sym(a_dot)))
    return low, _mm(low, _phi(bind(solve_p, low, half)))


def _cholesky_vjp(ct, out, primals, needs):
    _real_only("cholesky", out)
    low_t = _mT(out)
    left = bind(solve_p, low_t, _phi(_mm(low_t, ct)))      # L^-T Phi(L^T ct)
    return (_sym(_mT(bind(solve_p, low_t, _mT(left)))),)    # ... L^-1, symmetrized


cholesky_p = Primitive("cholesky", lambda xp, a: xp.linalg.cholesky(a), _cholesky_eval,
                       jvp=_cholesky_jvp, vjp=_cholesky_vjp, emit="linalg.cholesky")
cholesky_p.batch = _unary_batch(cholesky_p)


# --------------------------------------------------------------------------------------
# qr (reduced): A = Q R for m >= n. With X = dA R^-1, C = Q^T X and D = tril(C, -1) minus
# its transpose: dQ = Q (D - C) + X, dR = (C - D) R. Its transpose: G = ct_R R^T -
# Q^T ct_Q, H = triu(G) + triu(G, 1)^T, ct_A = (ct_Q + Q H) R^-T.
# --------------------------------------------------------------------------------------
def _qr_impl(xp, a):
    q, r = xp.linalg.qr(a)
    return q, r


def _qr_eval(a):
    if a.ndim < 2:
        raise ValueError(f"fnp.linalg.qr: expected a matrix or a stack of them (shape "
                         f"(..., m, n)), got shape {a.shape}")
    *batch, m, n = a.shape
    k = min(m, n)
    return (ShapedArray((*batch, m, k), a.dtype), ShapedArray((*batch, k, n), a.dtype))


def _check_not_wide(a):
    _real_only("qr", a)
    m, n = aval_of(a).shape[-2:]
    if m < n:
        raise NotImplementedError(
            f"fnp.linalg.qr: derivatives are implemented for square and tall matrices "
            f"(m >= n), got shape {aval_of(a).shape}; differentiate the QR of the "
            "transpose or of a tall slice instead")


def _qr_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    _check_not_wide(a)
    q, r = bind(qr_p, a)
    x = _mT(bind(solve_p, _mT(r), _mT(a_dot)))            # dA R^-1
    c = _mm(_mT(q), x)
    lower = c * _band_weights(c, 1.0, 0.0, 0.0)
    d = lower - _mT(lower)
    return (q, r), (_mm(q, d - c) + x, _mm(c - d, r))


def _qr_vjp(ct, out, primals, needs):
    (a,) = primals
    _check_not_wide(a)
    q, r = out
    ct_q, ct_r = ct
    g = None if ct_r is None else _mm(ct_r, _mT(r))
    if ct_q is not None:
        g = -_mm(_mT(q), ct_q) if g is None else g - _mm(_mT(q), ct_q)
    h = g * _band_weights(g, 0.0, 1.0, 1.0) + _mT(
        g * _band_weights(g, 0.0, 0.0, 1.0))
    x_bar = _mm(q, h) if ct_q is None else ct_q + _mm(q, h)
    return (_mT(bind(solve_p, r, _mT(x_bar))),)


qr_p = Primitive("qr", _qr_impl, _qr_eval, jvp=_qr_jvp, vjp=_qr_vjp, emit="linalg.qr",
                 multiple_results=True)
qr_p.batch = _unary_batch(qr_p, 2)


# --------------------------------------------------------------------------------------
# eigh: A = V diag(w) V^T, w ascending. With C = V^T sym(dA) V and F_ij = 1/(w_j - w_i):
# dw = diag(C), dV = V (F o C); ct_A = sym(V (diag(ct_w) + F o (V^T ct_V)) V^T).
# Undefined (infinite) for repeated eigenvalues: their eigenvectors are not unique.
# --------------------------------------------------------------------------------------
def _eigh_impl(xp, a, UPLO):
    w, v = xp.linalg.eigh(a, UPLO=UPLO)
    return w, v


def _eigh_eval(a, UPLO):
    _square_eval("eigh")(a)
    return ShapedArray(a.shape[:-1], _real_dtype(a.dtype)), ShapedArray(a.shape, a.dtype)


def _eigh_jvp(primals, tangents, *, UPLO):
    (a,), (a_dot,) = primals, tangents
    _real_only("eigh", a)
    w, v = bind(eigh_p, a, UPLO=UPLO)
    c = _mm(_mT(v), _mm(_sym(a_dot), v))
    return (w, v), (_diagonal(c), _mm(v, _inverse_gaps(w) * c))


def _eigh_vjp(ct, out, primals, needs, *, UPLO):
    _real_only("eigh", primals[0])
    w, v = out
    ct_w, ct_v = ct
    inner = None if ct_w is None else _diag_embed(ct_w)
    if ct_v is not None:
        term = _inverse_gaps(w) * _mm(_mT(v), ct_v)
        inner = term if inner is None else inner + term
    return (_sym(_mm(v, _mm(inner, _mT(v)))),)


eigh_p = Primitive("eigh", _eigh_impl, _eigh_eval, jvp=_eigh_jvp, vjp=_eigh_vjp,
                   emit="linalg.eigh", multiple_results=True)
eigh_p.batch = _unary_batch(eigh_p, 2)


# eigvalsh: its own primitive because it is faster than eigh when nothing is
# differentiated; its rules need the eigenvectors and get them from eigh.
def _eigvalsh_eval(a, UPLO):
    _square_eval("eigvalsh")(a)
    return ShapedArray(a.shape[:-1], _real_dtype(a.dtype))


def _eigvalsh_jvp(primals, tangents, *, UPLO):
    (a,), (a_dot,) = primals, tangents
    _real_only("eigvalsh", a)
    w, v = bind(eigh_p, a, UPLO=UPLO)
    return w, fnp.sum(v * _mm(_sym(a_dot), v), axis=-2)    # diag(V^T dA V)


def _eigvalsh_vjp(ct, out, primals, needs, *, UPLO):
    (a,) = primals
    _real_only("eigvalsh", a)
    _, v = bind(eigh_p, a, UPLO=UPLO)
    return (_mm(v * fnp.expand_dims(ct, -2), _mT(v)),)      # V diag(ct) V^T


eigvalsh_p = Primitive("eigvalsh", lambda xp, a, UPLO: xp.linalg.eigvalsh(a, UPLO=UPLO),
                       _eigvalsh_eval, jvp=_eigvalsh_jvp, vjp=_eigvalsh_vjp,
                       emit="linalg.eigvalsh")
eigvalsh_p.batch = _unary_batch(eigvalsh_p)


# --------------------------------------------------------------------------------------
# svd: A = U diag(s) Vh, k = min(m, n), s descending. With dS = U^T dA V, Σ = diag(s) and
# F_ij = 1/(s_j^2 - s_i^2) (Townsend 2016):
#   ds = diag(dS),  dU = U (F o (dS Σ + Σ dS^T)) + (I - U U^T) dA V Σ^-1,
#   dV = V (F o (Σ dS + dS^T Σ)) + (I - V V^T) dA^T U Σ^-1.
# Transposed: with Ju = F o (U^T ct_U), Jv = F o (V^T ct_V),
#   K = diag(ct_s) + (Ju + Ju^T) Σ + Σ (Jv + Jv^T),
#   ct_A = U K Vh + (I - U U^T) ct_U Σ^-1 Vh + U Σ^-1 ct_V^T (I - V V^T).
# Valid for distinct, nonzero singular values (else U and V are not unique).
# --------------------------------------------------------------------------------------
def _svd_impl(xp, a, full_matrices):
    u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


def _svd_eval(a, full_matrices):
    if a.ndim < 2:
        raise ValueError(f"fnp.linalg.svd: expected a matrix or a stack of them (shape "
                         f"(..., m, n)), got shape {a.shape}")
    *batch, m, n = a.shape
    ku, kv = (m, n) if full_matrices else (min(m, n),) * 2
    return (ShapedArray((*batch, m, ku), a.dtype),
            ShapedArray((*batch, min(m, n)), _real_dtype(a.dtype)),
            ShapedArray((*batch, kv, n), a.dtype))


def _check_reduced(a, full_matrices):
    _real_only("svd", a)
    m, n = aval_of(a).shape[-2:]
    if full_matrices and m != n:
        raise NotImplementedError(
            f"fnp.linalg.svd: derivatives with full_matrices=True are not implemented for "
            f"non-square input (shape {aval_of(a).shape}): the extra singular vectors are "
            "not unique. Use full_matrices=False.")


def _svd_jvp(primals, tangents, *, full_matrices):
    (a,), (a_dot,) = primals, tangents
    _check_reduced(a, full_matrices)
    u, s, vh = bind(svd_p, a, full_matrices=full_matrices)
    v = _mT(vh)
    m, n = a.shape[-2:]
    k = s.shape[-1]
    d_s_mat = _mm(_mT(u), _mm(a_dot, v))
    s_row, s_col = fnp.expand_dims(s, -2), fnp.expand_dims(s, -1)
    f = _inverse_gaps(s * s)
    d_ss, s_ds = d_s_mat * s_row, s_col * d_s_mat
    u_dot = _mm(u, f * (d_ss + _mT(d_ss)))
    v_dot = _mm(v, f * (s_ds + _mT(s_ds)))
    if m > k:
        dav = _mm(a_dot, v)
        u_dot = u_dot + (dav - _mm(u, _mm(_mT(u), dav))) / s_row
    if n > k:
        datu = _mm(_mT(a_dot), u)
        v_dot = v_dot + (datu - _mm(v, _mm(vh, datu))) / s_row
    return (u, s, vh), (u_dot, _diagonal(d_s_mat), _mT(v_dot))


def _svd_vjp(ct, out, primals, needs, *, full_matrices):
    (a,) = primals
    u, s, vh = out
    ct_u, ct_s, ct_vh = ct
    if full_matrices and ct_u is None and ct_vh is None:
        # Only the singular values are used: their rule does not need unique extra vectors.
        return _svdvals_vjp(ct_s, s, primals, needs)
    _check_reduced(a, full_matrices)
    m, n = aval_of(a).shape[-2:]
    k = s.shape[-1]
    s_row, s_col = fnp.expand_dims(s, -2), fnp.expand_dims(s, -1)
    f = _inverse_gaps(s * s)
    inner = None if ct_s is None else _diag_embed(ct_s)
    extra = None
    if ct_u is not None:
        j = f * _mm(_mT(u), ct_u)
        term = (j + _mT(j)) * s_row
        inner = term if inner is None else inner + term
        if m > k:
            extra = _mm((ct_u - _mm(u, _mm(_mT(u), ct_u))) / s_row, vh)
    if ct_vh is not None:
        ct_v = _mT(ct_vh)
        j = f * _mm(vh, ct_v)
        term = s_col * (j + _mT(j))
        inner = term if inner is None else inner + term
        if n > k:
            term = _mm(u / s_row, _mT(ct_v - _mm(_mT(vh), _mm(vh, ct_v))))
            extra = term if extra is None else extra + term
    ct_a = _mm(u, _mm(inner, vh))
    return (ct_a if extra is None else ct_a + extra,)


svd_p = Primitive("svd", _svd_impl, _svd_eval, jvp=_svd_jvp, vjp=_svd_vjp, emit="linalg.svd",
                  multiple_results=True)
svd_p.batch = _unary_batch(svd_p, 3)


# svdvals: the singular values alone (faster than svd when nothing is differentiated).
# ds = diag(U^T dA V); ct_A = U diag(ct) Vh.
def _svdvals_eval(a):
    return _svd_eval(a, False)[1]


def _svdvals_jvp(primals, tangents):
    (a,), (a_dot,) = primals, tangents
    _real_only("svd", a)
    u, s, vh = bind(svd_p, a, full_matrices=False)
    return s, fnp.sum(u * _mm(a_dot, _mT(vh)), axis=-2)


def _svdvals_vjp(ct, out, primals, needs):
    (a,) = primals
    _real_only("svd", a)
    u, _, vh = bind(svd_p, a, full_matrices=False)
    return (_mm(u * fnp.expand_dims(ct, -2), vh),)


svdvals_p = Primitive("svdvals", lambda xp, a: xp.linalg.svd(a, compute_uv=False),
                      _svdvals_eval, jvp=_svdvals_jvp, vjp=_svdvals_vjp,
                      emit="linalg.svdvals")
svdvals_p.batch = _unary_batch(svdvals_p)

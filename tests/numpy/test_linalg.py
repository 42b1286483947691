"""Linear algebra: edge cases, errors, derivative identities and the performance-shaped
rules (one GEMM for a vmapped matmul, transposed views in the vjp) that the property
tests in ``test_primitive_properties.py`` do not see."""

import contextlib

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite.primitives import linalg as lp

RNG = np.random.RandomState(0)


def randn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def conditioned(*shape):
    """Random, comfortably invertible (diagonally dominant) square matrices."""
    n = shape[-1]
    return randn(*shape) + 2 * n * np.eye(n)


@contextlib.contextmanager
def recording(prim):
    """Record the buffers each eager call of ``prim``'s impl receives."""
    calls, impl = [], prim.impl

    def spy(xp, *bufs, **params):
        calls.append(bufs)
        return impl(xp, *bufs, **params)

    prim.impl = spy
    try:
        yield calls
    finally:
        prim.impl = impl


# --- matmul --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape_a, shape_b", [
    ((3,), (3,)), ((3,), (2, 3, 4)), ((2, 4, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3,)),
    ((2, 1, 3, 4), (5, 4, 2)), ((4, 3), (3, 2))])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_matmul_matches_numpy_including_1d_operands(shape_a, shape_b, dtype):
    a, b = randn(*shape_a).astype(dtype), randn(*shape_b).astype(dtype)
    got = fnp.matmul(fnp.asarray(a), fnp.asarray(b))
    want = np.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(fnp.asarray(a) @ fnp.asarray(b), want, rtol=1e-6)


def test_matmul_accepts_lists_and_mixed_dtypes():
    assert float(fnp.matmul([1.0, 2.0], [3.0, 4.0])) == 11.0
    out = fnp.matmul(fnp.ones((2, 2), dtype="int64"), fnp.ones((2, 2), dtype="float32"))
    assert out.dtype == np.float64  # NumPy's promotion


@pytest.mark.parametrize("shape_a, shape_b", [((2, 3), (4, 5)), ((3,), (4,)), ((3,), (2, 4)),
                                              ((2, 2, 3), (3, 3, 4))])
def test_matmul_shape_errors_name_both_shapes(shape_a, shape_b):
    a, b = fnp.ones(shape_a), fnp.ones(shape_b)
    for f in (fnp.matmul, fl.grad(lambda a, b: fnp.sum(fnp.matmul(a, b)))):
        with pytest.raises(ValueError, match="fnp.matmul") as info:
            f(a, b)
        assert str(shape_a) in str(info.value) and str(shape_b) in str(info.value)


def test_matmul_of_a_scalar_is_an_error_pointing_to_multiply():
    with pytest.raises(ValueError, match="fnp.multiply"):
        fnp.matmul(2.0, fnp.ones(3))


def test_matmul_gradients_sum_over_broadcast_batch_axes():
    a, b = randn(2, 1, 3, 4), randn(5, 4, 2)
    ct = randn(2, 5, 3, 2)
    _, pullback = fl.vjp(fnp.matmul, fnp.asarray(a), fnp.asarray(b))
    ct_a, ct_b = pullback(fnp.asarray(ct))
    np.testing.assert_allclose(ct_a, (ct @ np.swapaxes(b, -1, -2)).sum(1, keepdims=True))
    np.testing.assert_allclose(ct_b, (np.swapaxes(a, -1, -2) @ ct).sum(0))


def test_matmul_vjp_multiplies_transposed_views_not_copies():
    a, b = fnp.asarray(randn(3, 4)), fnp.asarray(randn(4, 5))
    _, pullback = fl.vjp(fnp.matmul, a, b)
    with recording(lp.matmul_p) as calls:
        pullback(fnp.ones((3, 5)))
    operands = [x for call in calls for x in call]
    assert any(np.shares_memory(x, np.asarray(b)) and not x.flags.c_contiguous
               for x in operands)
    assert any(np.shares_memory(x, np.asarray(a)) and not x.flags.c_contiguous
               for x in operands)


@pytest.mark.parametrize("m, n", [(6, 2), (2, 6), (3, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_batched_outer_products_equal_the_broadcast_product_exactly(m, n, dtype):
    """``(..., m, 1) @ (..., 1, n)`` runs as an einsum (a transposed view when m > n):
    the same elements as ``a * b``, broadcast batch axes included, eagerly and jitted;
    a k of 1 with mismatched operands is still matmul's error."""
    a = (randn(4, m, 1) * 3).astype(dtype)
    b = (randn(1, n) * 3).astype(dtype)
    want = a * b
    for f in (fnp.matmul, fl.jit(fnp.matmul)):
        got = f(fnp.asarray(a), fnp.asarray(b))
        assert got.shape == want.shape == (4, m, n) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, np.matmul(a, b))
    b2 = randn(5, 1, n).astype(dtype)
    with pytest.raises(ValueError, match=rf"fnp.matmul: shapes \(4, {m}, 1\) and \(5, 1, {n}\)"):
        fnp.matmul(fnp.asarray(a), fnp.asarray(b2))


def test_per_example_weight_gradients_are_outer_products():
    xs, cts = fnp.asarray(randn(8, 5)), fnp.asarray(randn(8, 3))
    w = fnp.asarray(randn(5, 3))
    grads = fl.vmap(lambda x, c: fl.vjp(lambda w: x @ w, w)[1](c)[0])(xs, cts)
    np.testing.assert_allclose(grads, np.asarray(xs)[:, :, None] * np.asarray(cts)[:, None, :],
                               rtol=1e-12)


def test_vmap_of_matmul_with_a_shared_matrix_is_one_2d_gemm():
    xs, w = fnp.asarray(randn(8, 3, 4)), fnp.asarray(randn(4, 5))
    with recording(lp.matmul_p) as calls:
        out = fl.vmap(lambda x: x @ w)(xs)
    np.testing.assert_allclose(out, np.asarray(xs) @ np.asarray(w), rtol=1e-12)
    assert [tuple(x.shape for x in call) for call in calls] == [((24, 4), (4, 5))]
    # A vector per example (matrix-vector products) also becomes one GEMM.
    with recording(lp.matmul_p) as calls:
        out = fl.vmap(lambda x: fnp.matmul(x[0], w))(xs)
    np.testing.assert_allclose(out, np.asarray(xs)[:, 0] @ np.asarray(w), rtol=1e-12)
    assert len(calls) == 1 and all(x.ndim == 2 for x in calls[0])


def test_vmap_of_matmul_over_the_right_operand_is_one_gemm():
    w, xs = fnp.asarray(randn(5, 4)), fnp.asarray(randn(8, 4))
    with recording(lp.matmul_p) as calls:
        out = fl.vmap(lambda x: w @ x)(xs)
    np.testing.assert_allclose(out, np.asarray(xs) @ np.asarray(w).T, rtol=1e-12)
    assert len(calls) == 1 and all(x.ndim == 2 for x in calls[0])


def test_weight_gradient_of_a_3d_activation_is_one_gemm():
    x, w = fnp.asarray(randn(6, 3, 4)), fnp.asarray(randn(4, 5))
    _, pullback = fl.vjp(lambda w: fnp.matmul(x, w), w)
    with recording(lp.matmul_p) as calls:
        (g,) = pullback(fnp.ones((6, 3, 5)))
    np.testing.assert_allclose(g, np.einsum("bmk,bmn->kn", np.asarray(x), np.ones((6, 3, 5))))
    assert [tuple(b.shape for b in call) for call in calls] == [((4, 18), (18, 5))]


def test_per_example_gradients_of_a_linear_layer():
    w = fnp.asarray(randn(4, 3))
    xs = fnp.asarray(randn(6, 4))
    loss = lambda w, x: fnp.sum(fnp.tanh(x @ w))
    got = fl.vmap(fl.grad(loss), in_axes=(None, 0))(w, xs)
    want = np.stack([np.asarray(fl.grad(loss)(w, xs[i])) for i in range(6)])
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --- einsum --------------------------------------------------------------------------------
@pytest.mark.parametrize("subscripts, shapes", [
    ("Ba", [(2, 3)]), ("bA", [(2, 3)]), (" ij , jk ", [(2, 3), (3, 4)]),
    ("...ij,...jk", [(2, 1, 2, 3), (4, 3, 5)]), ("i...,i...", [(2, 3), (2, 3)]),
    ("ij->", [(0, 3)]), ("...", [(2, 3)])])
def test_einsum_subscript_forms_match_numpy(subscripts, shapes):
    ops = [randn(*s) for s in shapes]
    got = fnp.einsum(subscripts, *[fnp.asarray(x) for x in ops])
    want = np.einsum(subscripts, *ops)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_einsum_accepts_numpys_optimize_argument():
    # Which path runs is checked in tests/test_jit_buffers.py (never NumPy's default one).
    assert fnp.einsum("ij,jk->ik", fnp.ones((2, 3)), fnp.ones((3, 4)), optimize=False).shape \
        == (2, 4)


@pytest.mark.parametrize("subscripts, shapes, match", [
    ("ij,jk->ik", [(2, 3), (4, 5)], "label 'j' has sizes 3 and 4"),
    ("ij,jk", [(2, 3)], "2 operand subscripts for 1 operands"),
    ("ij->ik", [(2, 3)], "output label 'k'"),
    ("...ij->ij", [(5, 2, 3)], "needs '...'"),
    ("ijk", [(2, 3)], "3 labels for an operand of rank 2"),
    ("i2", [(2, 3)], "not a valid operand subscript")])
def test_einsum_errors_name_subscripts_and_shapes(subscripts, shapes, match):
    with pytest.raises(ValueError, match=match) as info:
        fnp.einsum(subscripts, *[fnp.ones(s) for s in shapes])
    assert "fnp.einsum" in str(info.value) and str(shapes[0]) in str(info.value)


def test_einsum_interleaved_form_is_rejected_clearly():
    with pytest.raises(TypeError, match="subscripts-string form"):
        fnp.einsum(fnp.ones((2, 2)), [0, 1])


def test_einsum_gradients_through_diagonals_and_traces():
    a = fnp.asarray(randn(3, 3))
    np.testing.assert_allclose(fl.grad(lambda a: fnp.einsum("ii", a))(a), np.eye(3))
    w = fnp.asarray(randn(3))
    g = fl.grad(lambda a: fnp.einsum("ii->i", a) @ w)(a)
    np.testing.assert_allclose(g, np.diag(np.asarray(w)))


def test_einsum_gradient_of_a_label_only_in_one_operand_is_broadcast():
    a, b = fnp.asarray(randn(2, 3)), fnp.asarray(randn(4))
    ga, gb = fl.grad(lambda a, b: fnp.sum(fnp.einsum("ij,k->k", a, b)), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, np.full((2, 3), np.asarray(b).sum()))
    np.testing.assert_allclose(gb, np.full(4, np.asarray(a).sum()))


def test_vmap_of_einsum_adds_one_label():
    xs, w = fnp.asarray(randn(5, 2, 3)), fnp.asarray(randn(3, 4))
    with recording(lp.einsum_p) as calls:
        out = fl.vmap(lambda x: fnp.einsum("ij,jk->ik", x, w))(xs)
    np.testing.assert_allclose(out, np.asarray(xs) @ np.asarray(w), rtol=1e-12)
    assert len(calls) == 1


# --- the other products -----------------------------------------------------------------------
def test_dot_follows_numpy_for_every_rank_combination():
    for sa, sb in [((), (3,)), ((3,), ()), ((3,), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4,)),
                   ((2, 3, 4), (5, 4, 6)), ((4,), (2, 4, 3))]:
        a, b = randn(*sa), randn(*sb)
        np.testing.assert_allclose(fnp.dot(fnp.asarray(a), fnp.asarray(b)), np.dot(a, b),
                                   rtol=1e-12)


def test_product_errors_name_function_and_shapes():
    with pytest.raises(ValueError, match=r"fnp.tensordot: shapes \(2, 3\) and \(4, 5\)"):
        fnp.tensordot(fnp.ones((2, 3)), fnp.ones((4, 5)), axes=1)
    with pytest.raises(ValueError, match="fnp.inner"):
        fnp.inner(fnp.ones((2, 3)), fnp.ones(4))
    with pytest.raises(ValueError, match="fnp.vdot: the arrays have 6 and 4 elements"):
        fnp.vdot(fnp.ones((2, 3)), fnp.ones(4))
    with pytest.raises(ValueError, match=r"fnp.matrix_transpose.*\(3,\)"):
        fnp.matrix_transpose(fnp.ones(3))


def test_multi_dot_multiplies_in_the_cheapest_order(monkeypatch):
    a, b, v = randn(10, 100), randn(100, 5), randn(5)
    calls, matmul = [], fnp.matmul
    monkeypatch.setattr(fnp.linalg, "matmul", lambda x, y: calls.append(
        (x.shape, y.shape)) or matmul(x, y))
    out = fnp.linalg.multi_dot([fnp.asarray(a), fnp.asarray(b), fnp.asarray(v)])
    np.testing.assert_allclose(out, np.linalg.multi_dot([a, b, v]), rtol=1e-12)
    assert calls[0] == ((100, 5), (5, 1))  # b @ v first


def test_numpy_functions_dispatch_to_fnp():
    a = fnp.asarray(randn(3, 3))
    for got, want in [(np.matmul(a, a), fnp.matmul(a, a)), (np.dot(a, a), fnp.dot(a, a)),
                      (np.einsum("ij->j", a), fnp.sum(a, axis=0)),
                      (np.linalg.norm(a), fnp.linalg.norm(a)),
                      (np.linalg.det(a), fnp.linalg.det(a))]:
        assert isinstance(got, fl.Array)
        np.testing.assert_allclose(got, want, rtol=1e-12)


# --- decompositions: values -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decompositions_return_numpy_results_and_field_names(dtype):
    a = randn(2, 4, 3, dtype=dtype)
    s = a[:, :3] + np.swapaxes(a[:, :3], -1, -2)
    for got, want in [(fnp.linalg.qr(a), np.linalg.qr(a)), (fnp.linalg.eigh(s),
                      np.linalg.eigh(s)), (fnp.linalg.svd(a), np.linalg.svd(a)),
                      (fnp.linalg.slogdet(s), np.linalg.slogdet(s))]:
        assert got._fields == want._fields
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_integer_input_is_computed_in_float64_and_float16_is_refused():
    a = np.array([[2, 1], [1, 3]])
    assert fnp.linalg.inv(a).dtype == np.linalg.inv(a).dtype == np.float64
    assert fnp.linalg.norm(a).dtype == np.float64
    with pytest.raises(TypeError, match="fnp.linalg.det: dtype float16"):
        fnp.linalg.det(np.eye(2, dtype=np.float16))


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh"])
def test_square_only_functions_name_the_shape(name):
    with pytest.raises(ValueError, match=rf"fnp.linalg.{name}: .*square.*\(2, 3\)"):
        getattr(fnp.linalg, name)(fnp.ones((2, 3)))


def test_solve_accepts_vectors_and_stacks_and_names_bad_shapes():
    a, b = conditioned(2, 3, 3), randn(3)
    np.testing.assert_allclose(fnp.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-12)
    b = randn(4, 1, 3, 2)
    np.testing.assert_allclose(fnp.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-12)
    with pytest.raises(ValueError, match=r"fnp.linalg.solve: a of shape \(2, 3, 3\) and b of "
                                         r"shape \(4,\)"):
        fnp.linalg.solve(a, randn(4))


def test_vmap_of_solve_with_a_shared_matrix_factorizes_once():
    a, bs = fnp.asarray(conditioned(3, 3)), fnp.asarray(randn(7, 3))
    with recording(lp.solve_p) as calls:
        out = fl.vmap(lambda b: fnp.linalg.solve(a, b))(bs)
    np.testing.assert_allclose(out, np.linalg.solve(np.asarray(a), np.asarray(bs).T).T,
                               rtol=1e-12)
    assert len(calls) == 1


def test_qr_modes_and_unsupported_mode():
    a = randn(3, 5)
    np.testing.assert_allclose(fnp.linalg.qr(a, mode="r"), np.linalg.qr(a, mode="r"))
    np.testing.assert_allclose(fnp.linalg.qr(a, mode="complete").Q,
                               np.linalg.qr(a, mode="complete").Q)
    with pytest.raises(NotImplementedError, match="mode='complete'"):
        fnp.linalg.qr(randn(5, 3), mode="complete")


def test_pinv_and_svd_without_vectors_match_numpy():
    a = randn(2, 5, 3)
    np.testing.assert_allclose(fnp.linalg.pinv(a), np.linalg.pinv(a), rtol=1e-10)
    np.testing.assert_allclose(fnp.linalg.svd(a, compute_uv=False),
                               np.linalg.svd(a, compute_uv=False), rtol=1e-12)


# --- decompositions: derivative identities ----------------------------------------------------
def test_gradient_of_logabsdet_is_the_inverse_transpose_and_det_agrees():
    a = fnp.asarray(conditioned(3, 3))
    g = fl.grad(lambda a: fnp.linalg.slogdet(a).logabsdet)(a)
    np.testing.assert_allclose(g, np.linalg.inv(np.asarray(a)).T, rtol=1e-12)
    via_slogdet = fl.grad(lambda a: (lambda s, l: s * fnp.exp(l))(*fnp.linalg.slogdet(a)))(a)
    np.testing.assert_allclose(fl.grad(fnp.linalg.det)(a), via_slogdet, rtol=1e-10)


def test_sign_of_slogdet_has_a_zero_tangent():
    a = fnp.asarray(conditioned(3, 3))
    (_, _), (t_sign, t_log) = fl.jvp(lambda a: tuple(fnp.linalg.slogdet(a)), (a,),
                                     (fnp.ones((3, 3), dtype="float64"),))
    np.testing.assert_array_equal(t_sign, 0.0)
    np.testing.assert_allclose(t_log, np.linalg.inv(np.asarray(a)).sum(), rtol=1e-12)  # tr(A^-1 1)


def _fd(f, a, direction, eps=1e-6):
    return (np.asarray(f(a + eps * direction)) - np.asarray(f(a - eps * direction))) / (2 * eps)


def test_cholesky_derivative_along_symmetric_directions_matches_finite_differences():
    m = randn(4, 4)
    a = m @ m.T + 4 * np.eye(4)
    d = randn(4, 4)
    d = d + d.T
    _, t = fl.jvp(fnp.linalg.cholesky, (fnp.asarray(a),), (fnp.asarray(d),))
    np.testing.assert_allclose(t, _fd(np.linalg.cholesky, a, d), rtol=1e-6, atol=1e-8)
    g = fl.grad(lambda a: fnp.sum(fnp.linalg.cholesky(a) ** 3))(fnp.asarray(a))
    np.testing.assert_allclose(g, np.asarray(g).T)  # symmetric gradient


def test_eigh_eigenvector_derivative_matches_finite_differences():
    m = randn(4, 4)
    a, d = m + m.T, randn(4, 4)
    d = d + d.T
    _, (t_w, t_v) = fl.jvp(lambda a: tuple(fnp.linalg.eigh(a)), (fnp.asarray(a),),
                           (fnp.asarray(d),))
    np.testing.assert_allclose(t_w, _fd(lambda x: np.linalg.eigh(x)[0], a, d), rtol=1e-6)
    np.testing.assert_allclose(t_v, _fd(lambda x: np.linalg.eigh(x)[1], a, d), rtol=1e-5,
                               atol=1e-7)


def test_svd_reconstruction_has_the_identity_gradient():
    a, c = fnp.asarray(randn(5, 3)), randn(5, 3)

    def f(a):
        u, s, vh = fnp.linalg.svd(a, full_matrices=False)
        return fnp.sum(((u * s) @ vh) * c)

    np.testing.assert_allclose(fl.grad(f)(a), c, rtol=1e-10, atol=1e-12)


def test_singular_values_of_a_full_svd_are_differentiable():
    a = fnp.asarray(randn(4, 2))
    g = fl.grad(lambda a: fnp.sum(fnp.linalg.svd(a).S))(a)
    u, _, vh = np.linalg.svd(np.asarray(a), full_matrices=False)
    np.testing.assert_allclose(g, u @ vh, rtol=1e-10)


def test_unsupported_derivatives_raise_clearly():
    with pytest.raises(NotImplementedError, match=r"fnp.linalg.qr: .*m >= n.*\(2, 4\)"):
        fl.grad(lambda a: fnp.sum(fnp.linalg.qr(a).R))(fnp.asarray(randn(2, 4)))
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        fl.grad(lambda a: fnp.sum(fnp.linalg.svd(a).U))(fnp.asarray(randn(4, 2)))
    with pytest.raises(NotImplementedError, match="complex"):
        fl.jvp(fnp.linalg.eigvalsh, (fnp.asarray(np.eye(2) + 0j),),
               (fnp.asarray(np.eye(2) + 0j),))


# --- norms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [
    fnp.linalg.norm, lambda x: fnp.linalg.norm(x, axis=-1).sum(),
    lambda x: fnp.linalg.norm(x, "fro"), lambda x: fnp.linalg.vector_norm(x),
    lambda x: fnp.linalg.matrix_norm(x)])
def test_two_norm_gradient_at_zero_is_zero_not_nan(f):
    g = fl.grad(f)(fnp.zeros((2, 3)))
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    h = fl.hessian(f)(fnp.zeros((2, 3)))
    assert np.all(np.isfinite(np.asarray(h)))


@pytest.mark.parametrize("ord_, axis, keepdims", [
    (None, None, True), (2, None, False), (np.inf, None, False), (-1, None, False),
    ("nuc", None, True), (1, 0, True), (0, 1, False), (2, (1, 0), False),
    (np.inf, (0, 1), True), (-2, None, False)])
def test_norm_orders_axes_and_keepdims_match_numpy(ord_, axis, keepdims):
    x = randn(3, 4)
    if axis is None and ord_ in (2, np.inf, -1) and ord_ != 2:
        x = x[0]  # a vector order on a 1-D input
    got = fnp.linalg.norm(x, ord_, axis, keepdims)
    want = np.linalg.norm(x, ord_, axis, keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_norm_errors():
    with pytest.raises(ValueError, match="not a vector norm"):
        fnp.linalg.norm(fnp.ones(3), "fro")
    with pytest.raises(ValueError, match="not a matrix norm"):
        fnp.linalg.norm(fnp.ones((2, 2)), 3)
    with pytest.raises(ValueError, match=r"1-D or 2-D input.*\(2, 2, 2\)"):
        fnp.linalg.norm(fnp.ones((2, 2, 2)), 1)


# --- shape rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("prim, shapes, params", [
    (lp.matmul_p, [(2, 1, 3, 4), (5, 4, 2)], {}),
    (lp.einsum_p, [(2, 3), (3, 4)], {"subscripts": "ij,jk->ik"}),
    (lp.einsum_p, [(3, 1), (3, 4)], {"subscripts": "ij,ij->ij"}),
    (lp.inv_p, [(2, 3, 3)], {}), (lp.det_p, [(3, 3)], {}), (lp.slogdet_p, [(2, 3, 3)], {}),
    (lp.solve_p, [(3, 3), (4, 3, 2)], {}), (lp.cholesky_p, [(3, 3)], {}),
    (lp.qr_p, [(5, 3)], {}), (lp.qr_p, [(3, 5)], {}), (lp.eigh_p, [(3, 3)], {"UPLO": "L"}),
    (lp.eigvalsh_p, [(2, 3, 3)], {"UPLO": "U"}),
    (lp.svd_p, [(5, 3)], {"full_matrices": True}), (lp.svd_p, [(3, 5)], {"full_matrices": False}),
    (lp.svdvals_p, [(2, 5, 3)], {})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_abstract_eval_matches_the_impl(prim, shapes, params, dtype):
    from functorch_lite.core import ShapedArray

    bufs = [conditioned(*s).astype(dtype) if s[-1] == s[-2] else randn(*s, dtype=dtype)
            for s in shapes]
    bufs = [b @ np.swapaxes(b, -1, -2) if prim is lp.cholesky_p else b for b in bufs]
    out = prim.impl(np, *bufs, **params)
    avals = prim.abstract_eval(*[ShapedArray(b.shape, b.dtype) for b in bufs], **params)
    outs, avals = (out, avals) if prim.multiple_results else ((out,), (avals,))
    for o, aval in zip(outs, avals, strict=True):
        assert (np.shape(o), np.asarray(o).dtype) == (aval.shape, aval.dtype)

"""vmap API tests: axes specs, pytrees, nesting, composition with autodiff, errors."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


def test_in_axes_tuple_with_none_and_negative_axes():
    xs = fnp.asarray(np.arange(12.0).reshape(3, 4))
    w = fnp.asarray(np.arange(3.0))
    out = fl.vmap(lambda x, w: x * w, in_axes=(-1, None))(xs, w)
    np.testing.assert_allclose(out, (np.asarray(xs) * np.asarray(w)[:, None]).T)


def test_in_axes_pytree_prefix_and_out_axes():
    params = {"w": fnp.ones((5, 2)), "b": fnp.zeros(2)}
    xs = fnp.asarray(np.arange(10.0).reshape(5, 2))
    f = lambda p, x: {"y": p["w"] * x + p["b"], "s": fnp.sum(x)}
    out = fl.vmap(f, in_axes=({"w": 0, "b": None}, 0), out_axes={"y": 1, "s": 0})(params, xs)
    assert out["y"].shape == (2, 5)
    np.testing.assert_allclose(out["s"], np.asarray(xs).sum(axis=1))


def test_unbatched_output_is_broadcast_and_out_axes_none_keeps_it():
    out = fl.vmap(lambda x: (x * 2, fnp.ones(3)), out_axes=(0, None))(fnp.ones((4, 2)))
    assert out[0].shape == (4, 2) and out[1].shape == (3,)
    out = fl.vmap(lambda x: fnp.ones(3))(fnp.ones((4, 2)))
    assert out.shape == (4, 3)


def test_axis_size_without_mapped_inputs():
    out = fl.vmap(lambda: fnp.zeros(2), in_axes=(), axis_size=3)()
    assert out.shape == (3, 2)


def test_nested_vmap_is_an_outer_product():
    a, b = fnp.asarray([1.0, 2.0, 3.0]), fnp.asarray([10.0, 20.0])
    out = fl.vmap(fl.vmap(lambda x, y: x * y, in_axes=(None, 0)), in_axes=(0, None))(a, b)
    np.testing.assert_allclose(out, np.outer(np.asarray(a), np.asarray(b)))


def test_per_example_gradients_match_a_loop():
    loss = lambda w, x: fnp.sum(fnp.tanh(w * x) ** 2)
    w = fnp.asarray(np.array([0.5, -0.3]))
    xs = fnp.asarray(np.random.RandomState(0).standard_normal((6, 2)))
    got = fl.vmap(fl.grad(loss), in_axes=(None, 0))(w, xs)
    want = np.stack([np.asarray(fl.grad(loss)(w, xs[i])) for i in range(6)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_grad_of_vmapped_loss():
    xs = fnp.asarray(np.arange(6.0).reshape(3, 2))
    g = fl.grad(lambda p: fl.vmap(lambda p, x: fnp.sum(p * x), (None, 0))(p, xs).sum())(
        fnp.ones(2))
    np.testing.assert_allclose(g, np.asarray(xs).sum(axis=0))


def test_vmap_of_jvp_and_batched_control_flow_error():
    xs = fnp.asarray(np.array([0.1, 0.2]))
    out = fl.vmap(lambda x: fl.jvp(fnp.sin, (x,), (fnp.ones((), "float64"),))[1])(xs)
    np.testing.assert_allclose(out, np.cos(np.asarray(xs)), rtol=1e-6)
    with pytest.raises(fl.ConcretizationError, match="fnp.where"):
        fl.vmap(lambda x: x if x > 0 else -x)(xs)


def test_inconsistent_sizes_name_both_arguments():
    with pytest.raises(ValueError, match=r"args\[1\].*2.*args\[0\].*3"):
        fl.vmap(lambda a, b: a + b)(fnp.ones(3), fnp.ones(2))


def test_in_axes_length_mismatch_and_bad_axis():
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        fl.vmap(lambda a, b: a, in_axes=(0,))(fnp.ones(3), fnp.ones(3))
    with pytest.raises(ValueError, match="out of range"):
        fl.vmap(lambda a: a, in_axes=2)(fnp.ones(3))
    with pytest.raises(ValueError, match="axis_size"):
        fl.vmap(lambda a: a, in_axes=None)(fnp.ones(3))


def test_leaked_batch_tracer():
    leaked = []
    fl.vmap(lambda x: leaked.append(x) or x)(fnp.ones(3))
    with pytest.raises(fl.LeakedTracerError):
        leaked[0] + 1


def test_batched_values_report_their_per_example_shape_dtype_and_rank():
    """A batched value answers shape/ndim/dtype itself (not through an abstract value):
    they must equal its abstract value's, for any batch axis and under nested vmaps."""
    seen = []

    def probe(x):
        seen.append((x.shape, x.ndim, x.dtype, x.aval.shape, x.aval.ndim, x.aval.dtype))
        return x

    x = fnp.zeros((2, 3, 4, 5), "float64")
    fl.vmap(probe, in_axes=1)(x)
    fl.vmap(fl.vmap(probe, in_axes=0), in_axes=2)(x)
    fl.vmap(fl.grad(lambda v: fnp.sum(probe(v))), in_axes=3)(x)
    assert [s[:3] for s in seen] == [s[3:] for s in seen]
    assert [s[0] for s in seen] == [(2, 4, 5), (3, 5), (2, 3, 4)]
    assert all(s[2] == np.float64 for s in seen)

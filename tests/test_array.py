"""fl.Array basics: immutability, repr, conversions, dtype defaults and promotion."""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp


def test_setitem_raises_naming_at():
    x = fnp.zeros(3)
    with pytest.raises(TypeError, match=r"x = x\.at\[1:2\]\.set\(v\)"):
        x[1:2] = 1.0


def test_array_interface_is_a_read_only_view():
    x = fnp.arange(3.0)
    view = np.asarray(x)
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 5.0
    assert np.asarray(x, dtype=np.float64).dtype == np.float64


def test_repr_and_str():
    assert repr(fnp.array([1.0, 2.0])) == "Array([1., 2.], dtype=float32)"
    assert repr(fnp.array(3)) == "Array(3, dtype=int64)"
    assert str(fnp.array([1, 2])) == "[1 2]"
    assert f"{fnp.array(1.5):.2f}" == "1.50"


def test_scalar_conversions():
    assert float(fnp.array([2.5])) == 2.5
    assert int(fnp.array(3)) == 3
    assert bool(fnp.array(True)) is True
    assert fnp.array(7).item() == 7
    assert [0, 1, 2][fnp.array(1)] == 1   # __index__
    with pytest.raises(TypeError, match="ambiguous"):
        bool(fnp.ones(2))
    with pytest.raises(TypeError, match="integer"):
        [0, 1][fnp.array(1.0)]


def test_attributes_and_methods():
    x = fnp.asarray(np.arange(6.0).reshape(2, 3))
    assert (x.shape, x.ndim, x.size, x.device) == ((2, 3), 2, 6, "cpu")
    assert x.T.shape == (3, 2)
    assert x.reshape(3, 2).shape == (3, 2) and x.reshape((6,)).shape == (6,)
    np.testing.assert_allclose(x.sum(axis=0), [3.0, 5.0, 7.0])
    np.testing.assert_allclose(x.mean(), 2.5)
    assert x.astype("int32").dtype == np.int32
    assert x.block_until_ready() is x
    assert len(x) == 2 and [r.shape for r in x] == [(3,), (3,)]
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_default_float_dtype_and_x64_switch():
    assert fnp.array([1.0]).dtype == np.float32
    assert fnp.asarray(2.0).dtype == np.float32
    assert fnp.sin(2.0).dtype == np.float32          # Python scalars alone: default dtype
    assert fnp.asarray(np.zeros(2)).dtype == np.float64  # inputs keep their dtype
    with fl.config.enable_x64():
        assert fnp.array([1.0]).dtype == np.float64
        assert fnp.zeros(2).dtype == np.float64
    assert fnp.zeros(2).dtype == np.float32


def test_python_scalars_are_weakly_typed():
    x = fnp.ones(2)
    assert (x * 2.0).dtype == np.float32
    assert (2.0 * x).dtype == np.float32
    assert (x + 1).dtype == np.float32
    assert (fnp.ones(2, dtype="int32") + 1).dtype == np.int32
    assert (fnp.ones(2, dtype="int32") * 1.5).dtype == np.float64  # NumPy 2 rules


def test_weak_scalars_inside_transforms_keep_float32():
    g = fl.grad(lambda x: fnp.sum(x * 2.0 + 1.0) ** 2)(fnp.ones(2))
    assert g.dtype == np.float32
    assert fl.vmap(lambda x: x * 2.0)(fnp.ones((3, 2))).dtype == np.float32


def test_lists_and_raw_arrays_are_accepted_everywhere():
    np.testing.assert_allclose(fnp.add([1.0, 2.0], np.array([1.0, 1.0])), [2.0, 3.0])
    assert fnp.sum([[1, 2], [3, 4]]).item() == 10
    with pytest.raises(TypeError, match="expected an array"):
        fnp.sin("abc")


def test_fnp_array_copies_numpy_input():
    raw = np.zeros(2)
    x = fnp.array(raw)
    raw[0] = 5.0
    assert float(x[0]) == 0.0


def test_arrays_pickle_and_copy():
    import copy
    import pickle

    x = fnp.arange(3.0)
    assert copy.deepcopy(x) is x
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(x)), x)


def test_python_scalars_alone_give_the_default_dtype_for_every_primitive_kind():
    # elementwise (numpy scalar result) and shape ops (ndarray result) alike
    for out in (fnp.sin(2.0), fnp.add(1.0, 2), fnp.broadcast_to(1.5, (3,)),
                fnp.reshape(2.0, (1,)), fnp.cumsum(2.0)):
        assert out.dtype == np.float32, out
    assert fnp.add(1, 2).dtype == np.int64

"""The library on CuPy: results on a GPU equal NumPy's, gradients and random draws too.

Skipped, with the reason, where CuPy is not installed or CUDA sees no GPU.
"""

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp

cupy = pytest.importorskip("cupy", reason="CuPy is not installed; the GPU tests need CuPy "
                                          "and a CUDA GPU (pip install cupy-cuda12x)")
if len(fl.devices()) < 2:
    pytest.skip("CuPy is installed but CUDA sees no GPU", allow_module_level=True)


def _on(array, device):
    assert isinstance(array, fl.Array) and array.device == device
    if device != "cpu":
        assert isinstance(array._buf, cupy.ndarray)
    return np.asarray(array)


# --------------------------------------------------------------------------------------
# Arithmetic on the GPU equals NumPy's
# --------------------------------------------------------------------------------------
def test_elementwise_on_gpu_equals_numpy(gpu, to_gpu, rng):
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(5,))
    gx, gy = to_gpu((x, y))
    np.testing.assert_allclose(_on(fnp.sin(gx) * gy + 2.0, gpu), np.sin(x) * y + 2.0,
                               rtol=1e-12)
    np.testing.assert_allclose(_on(fnp.exp(gx) / (1 + fnp.abs(gy)), gpu),
                               np.exp(x) / (1 + np.abs(y)), rtol=1e-12)
    np.testing.assert_array_equal(_on(gx > gy, gpu), x > y)
    np.testing.assert_allclose(_on(fnp.where(gx > 0, gx, 0.1 * gx), gpu),
                               np.where(x > 0, x, 0.1 * x), rtol=1e-12)


def test_reductions_on_gpu_equal_numpy(gpu, to_gpu, rng):
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    gx = to_gpu(x)
    np.testing.assert_allclose(_on(fnp.sum(gx, axis=1), gpu), x.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(_on(fnp.mean(gx), gpu), x.mean(), rtol=1e-5)
    np.testing.assert_allclose(_on(fnp.max(gx, axis=(0, 2)), gpu), x.max(axis=(0, 2)))
    np.testing.assert_array_equal(_on(fnp.argmax(gx, axis=-1), gpu), x.argmax(axis=-1))


def test_matmul_on_gpu_equals_numpy(gpu, to_gpu, rng):
    a, b = rng.normal(size=(8, 16)), rng.normal(size=(16, 4))
    ga, gb = to_gpu((a, b))
    np.testing.assert_allclose(_on(ga @ gb, gpu), a @ b, rtol=1e-10)
    batched = rng.normal(size=(3, 8, 16))
    np.testing.assert_allclose(_on(fnp.matmul(to_gpu(batched), gb), gpu), batched @ b,
                               rtol=1e-10)


# --------------------------------------------------------------------------------------
# Transforms on GPU arrays
# --------------------------------------------------------------------------------------
def _loss(w, x):
    return fnp.sum(fnp.tanh(x @ w) ** 2)


def test_grad_on_gpu_equals_grad_on_cpu(gpu, to_gpu, rng):
    w, x = rng.normal(size=(5, 3)), rng.normal(size=(7, 5))
    want = np.asarray(fl.grad(_loss)(w, x))
    got = fl.grad(_loss)(*to_gpu((w, x)))
    np.testing.assert_allclose(_on(got, gpu), want, rtol=1e-10)


def test_vmap_on_gpu_equals_vmap_on_cpu(gpu, to_gpu, rng):
    w, xs = rng.normal(size=(5, 3)), rng.normal(size=(4, 7, 5))
    per_example = fl.vmap(fl.grad(_loss), in_axes=(None, 0))
    np.testing.assert_allclose(_on(per_example(*to_gpu((w, xs))), gpu),
                               np.asarray(per_example(w, xs)), rtol=1e-10)


# --------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------
def test_device_put_round_trip(gpu, rng):
    tree = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": [np.arange(4), 1.5]}
    on_gpu = fl.device_put(tree, gpu)
    assert all(leaf.device == gpu for leaf in fl.tree.leaves(on_gpu))
    assert fl.device_put(on_gpu["w"], gpu) is on_gpu["w"]
    back = fl.device_put(on_gpu, "cpu")
    for leaf, original in zip(fl.tree.leaves(back), fl.tree.leaves(tree), strict=True):
        np.testing.assert_array_equal(_on(leaf, "cpu"), original)


def test_best_device_is_a_gpu():
    assert fl.best_device() in fl.devices()[1:]


def test_mixing_cpu_and_gpu_raises(gpu, to_gpu):
    with pytest.raises(ValueError, match=f"CPU array f32\\[3\\] with an array on {gpu}"):
        to_gpu(np.ones(3, np.float32)) + fnp.ones(3)


def test_mixing_two_gpus_raises():
    if len(fl.devices()) < 3:
        pytest.skip("needs two GPUs")
    a = fl.device_put(np.ones(3), "cuda:0")
    b = fl.device_put(np.ones(3), "cuda:1")
    with pytest.raises(ValueError, match="cuda:0 and cuda:1"):
        a + b


# --------------------------------------------------------------------------------------
# Random numbers: Threefry is integer arithmetic, so a key draws the same on every device
# --------------------------------------------------------------------------------------
DRAWS = {
    "bits": (lambda k: fl.random.bits(k, (1000,)), 0),
    "bits64": (lambda k: fl.random.bits(k, (1000,), "uint64"), 0),
    "split": (lambda k: fl.random.split(k, 5), 0),
    "fold_in": (lambda k: fl.random.fold_in(k, 3), 0),
    "uniform": (lambda k: fl.random.uniform(k, (1000,), minval=-2.0, maxval=3.0), 0),
    "randint": (lambda k: fl.random.randint(k, (1000,), -5, 17), 0),
    "bernoulli": (lambda k: fl.random.bernoulli(k, 0.3, (1000,)), 0),
    "permutation": (lambda k: fl.random.permutation(k, 100), 0),
    # transcendental functions may differ in the last bits between CPU and GPU libraries
    "normal": (lambda k: fl.random.normal(k, (1001,)), 1e-5),
    "normal64": (lambda k: fl.random.normal(k, (1001,), "float64"), 1e-12),
    "gumbel": (lambda k: fl.random.gumbel(k, (100,)), 1e-5),
    "truncated_normal": (lambda k: fl.random.truncated_normal(k, -1.0, 2.0, (100,)), 1e-5),
}


@pytest.mark.parametrize("name", DRAWS)
def test_random_on_gpu_equals_cpu(gpu, name):
    draw, rtol = DRAWS[name]
    key = fl.random.key(2024)
    got = _on(draw(fl.device_put(key, gpu)), gpu)
    want = np.asarray(draw(key))
    if rtol:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(got, want)


def test_vmapped_keys_on_gpu(gpu):
    keys = fl.random.split(fl.random.key(0), 4)
    def draw(k):
        return fl.random.uniform(k, (3,))
    got = _on(fl.vmap(draw)(fl.device_put(keys, gpu)), gpu)
    np.testing.assert_array_equal(got, np.asarray(fl.vmap(draw)(keys)))


def test_default_device_places_new_keys(gpu):
    with fl.config.set_default_device(gpu):
        key = fl.random.key(1)
        draw = fl.random.normal(key, (10,))
    assert key.device == gpu and draw.device == gpu
    np.testing.assert_allclose(np.asarray(draw), np.asarray(fl.random.normal(
        fl.random.key(1), (10,))), rtol=1e-5, atol=1e-6)

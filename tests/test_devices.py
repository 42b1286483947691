"""Devices without a GPU: listing, choosing, moving, and the errors of mixing devices.

CuPy is replaced by a small fake module (``FakeCupy``) that counts devices, reports free
memory and makes "device arrays" that wrap NumPy arrays; it runs the device logic on any
machine. ``tests/gpu`` repeats the parts that need a real GPU.
"""

import subprocess
import sys
import types

import numpy as np
import pytest

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import core


class FakeDeviceArray:
    """Stands in for cupy.ndarray: its type's module is 'cupy', it knows its device."""

    __module__ = "cupy"

    def __init__(self, array, device_id):
        self.array = np.asarray(array)
        self.device = types.SimpleNamespace(id=device_id)
        self.shape, self.dtype, self.ndim = self.array.shape, self.array.dtype, self.array.ndim

    def get(self):
        return self.array.copy()

    def copy(self):
        return FakeDeviceArray(self.array, FakeCupy.current)


class FakeCupy(types.ModuleType):
    """Stands in for the cupy module: ``free`` holds each GPU's free memory."""

    current = 0

    def __init__(self, free=(), fail=False):
        super().__init__("cupy")
        cupy = self

        class Device:
            def __init__(self, index):
                self.id = index

            def __enter__(self):
                self.previous, FakeCupy.current = FakeCupy.current, self.id

            def __exit__(self, *exc):
                FakeCupy.current = self.previous

        def device_count():
            if fail:
                raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
            return len(cupy.free)

        self.free = list(free)
        self.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(
            getDeviceCount=device_count,
            memGetInfo=lambda: (cupy.free[FakeCupy.current], 100 << 30)))

    @staticmethod
    def asarray(array):
        return FakeDeviceArray(array, FakeCupy.current)


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def fake_gpus(monkeypatch):
    """Three fake GPUs with 10, 50 and 30 GiB free."""
    fake = FakeCupy(free=(10 << 30, 50 << 30, 30 << 30))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(core.backends, "gpu_seen", core.backends.gpu_seen)  # restored after
    monkeypatch.setattr(FakeCupy, "current", 0)
    return fake


# --------------------------------------------------------------------------------------
# Listing and choosing devices
# --------------------------------------------------------------------------------------
def test_only_the_cpu_without_cupy(no_cupy):
    assert fl.devices() == ["cpu"]
    assert fl.best_device() == "cpu"
    assert fl.default_device() == "cpu"


def test_gpus_are_listed_after_the_cpu(fake_gpus):
    assert fl.devices() == ["cpu", "cuda:0", "cuda:1", "cuda:2"]


@pytest.mark.parametrize("visible", ["", "-1", " "])
def test_cuda_visible_devices_can_hide_every_gpu(fake_gpus, monkeypatch, visible):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert fl.devices() == ["cpu"]
    assert fl.best_device() == "cpu"


def test_a_cuda_error_means_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", FakeCupy(fail=True))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert fl.devices() == ["cpu"]


def test_best_device_has_the_most_free_memory(fake_gpus):
    assert fl.best_device() == "cuda:1"
    fake_gpus.free[2] = 60 << 30
    assert fl.best_device() == "cuda:2"


# --------------------------------------------------------------------------------------
# The default device
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling, name", [
    ("cuda:2", "cuda:2"), ("cuda", "cuda:0"), ("gpu", "cuda:0"), ("GPU:1", "cuda:1"),
    (1, "cuda:1"), ("cpu", "cpu"), (None, "cpu"),
])
def test_set_default_device_spellings(fake_gpus, spelling, name):
    with fl.config.set_default_device(spelling):
        assert fl.default_device() == name
    assert fl.default_device() == "cpu"


def test_set_default_device_as_a_plain_call(fake_gpus):
    fl.config.set_default_device("cuda:1")
    try:
        assert fl.default_device() == "cuda:1"
    finally:
        fl.config.set_default_device("cpu")
    assert fl.default_device() == "cpu"


def test_set_default_device_rejects_unknown_devices(no_cupy):
    with pytest.raises(ValueError, match=r"'cuda:0' is not available; CuPy is not installed"):
        fl.config.set_default_device("cuda:0")
    with pytest.raises(ValueError, match=r"'tpu' is not a device; use 'cpu' or 'cuda:N'"):
        fl.config.set_default_device("tpu")
    assert fl.default_device() == "cpu"


def test_set_default_device_names_the_available_devices(fake_gpus):
    with pytest.raises(ValueError, match=r"'cuda:5' is not available\. fl\.devices\(\) lists "
                                         r"\['cpu', 'cuda:0', 'cuda:1', 'cuda:2'\]"):
        fl.config.set_default_device("cuda:5")


def test_new_keys_go_to_the_default_device(fake_gpus):
    with fl.config.set_default_device("cuda:2"):
        key = fl.random.key(7)
    assert type(key._buf) is FakeDeviceArray and key.device == "cuda:2"
    np.testing.assert_array_equal(key._buf.get(), [0, 7])
    assert core.backends.gpu_seen
    assert fl.random.key(7).device == "cpu"


# --------------------------------------------------------------------------------------
# device_put
# --------------------------------------------------------------------------------------
def test_device_put_to_the_cpu_keeps_the_tree():
    tree = {"w": np.ones((2, 2), np.float64), "b": [0.5, fnp.arange(3)], "none": None,
            "pair": (1, np.float32(2.0))}
    out = fl.device_put(tree, "cpu")
    assert fl.tree.structure(out) == fl.tree.structure(tree)
    for leaf, original in zip(fl.tree.leaves(out), fl.tree.leaves(tree), strict=True):
        assert type(leaf) is fl.Array and leaf.device == "cpu"
        np.testing.assert_array_equal(leaf, original)
    assert out["w"].dtype == np.float64 and out["b"][0].dtype == np.float32


def test_device_put_defaults_to_the_default_device(fake_gpus):
    with fl.config.set_default_device("cuda:1"):
        moved = fl.device_put(np.arange(3))
    assert moved.device == "cuda:1"


def test_device_put_moves_between_devices(fake_gpus):
    x = np.arange(6.0).reshape(2, 3)
    on_gpu = fl.device_put({"x": x}, "cuda:1")["x"]
    assert type(on_gpu._buf) is FakeDeviceArray and on_gpu.device == "cuda:1"
    assert core.backends.gpu_seen
    assert fl.device_put(on_gpu, "cuda:1") is on_gpu  # already there: no copy
    other = fl.device_put(on_gpu, "cuda:0")
    assert other.device == "cuda:0" and other._buf is not on_gpu._buf
    back = fl.device_put(other, "cpu")
    assert type(back._buf) is np.ndarray
    np.testing.assert_array_equal(back, x)


def test_device_put_to_a_missing_gpu(no_cupy):
    with pytest.raises(ValueError, match=r"fl\.device_put: device 'cuda:0' is not available"):
        fl.device_put(np.ones(2), "cuda")


def test_device_put_refuses_traced_values():
    def f(x):
        return fnp.sum(fl.device_put(x, "cpu"))

    with pytest.raises(TypeError, match=r"cannot move a traced value \(f32\[2\], inside "
                                        r"grad\).*before calling the transformed function"):
        fl.grad(f)(fnp.ones(2))


# --------------------------------------------------------------------------------------
# Mixing devices
# --------------------------------------------------------------------------------------
def test_mixing_two_gpus_names_both(fake_gpus):
    core.backends.gpu_seen = True
    a = fl.Array(FakeDeviceArray(np.ones(3), 0))
    b = fl.Array(FakeDeviceArray(np.ones(3), 1))
    with pytest.raises(ValueError, match=r"cuda:0 and cuda:1.*fl\.device_put"):
        a + b


def test_mixing_the_cpu_and_a_gpu_names_both(fake_gpus):
    core.backends.gpu_seen = True
    on_gpu = fl.Array(FakeDeviceArray(np.ones(3), 2))
    with pytest.raises(ValueError, match=r"CPU array f64\[3\] with an array on cuda:2"):
        fnp.multiply(on_gpu, np.ones(3))


# --------------------------------------------------------------------------------------
# CuPy stays optional
# --------------------------------------------------------------------------------------
def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)


def test_importing_the_library_does_not_import_cupy():
    result = _python("import sys, functorch_lite as fl; fl.random.normal(fl.random.key(0), "
                     "(2,)); print('cupy' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_library_works_where_cupy_cannot_be_imported():
    result = _python("import sys; sys.modules['cupy'] = None\n"
                     "import functorch_lite as fl\n"
                     "print(fl.devices(), fl.best_device(), float(fl.random.uniform("
                     "fl.random.key(0))) < 1)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['cpu'] cpu True"


# --------------------------------------------------------------------------------------
# Created arrays follow the default device; *_like follows its argument's device
# --------------------------------------------------------------------------------------
def test_creation_functions_follow_the_default_device(fake_gpus):
    with fl.config.set_default_device("cuda:1"):
        made = [fnp.zeros(2), fnp.ones((2, 2)), fnp.full(3, 7.0), fnp.arange(4), fnp.eye(2),
                fnp.linspace(0.0, 1.0, 3), fnp.asarray([1.0, 2.0])]
    for a in made:
        assert a.device == "cuda:1", a
    np.testing.assert_array_equal(made[2]._buf.get(), [7.0, 7.0, 7.0])
    assert fnp.zeros(2).device == "cpu"


def test_like_functions_follow_their_argument(fake_gpus):
    on_gpu = fl.device_put(np.arange(3.0), "cuda:2")
    for a in (fnp.zeros_like(on_gpu), fnp.ones_like(on_gpu), fnp.full_like(on_gpu, 2.0)):
        assert a.device == "cuda:2" and a.shape == (3,)
    np.testing.assert_array_equal(fnp.full_like(on_gpu, 2.0)._buf.get(), [2.0, 2.0, 2.0])
    assert fnp.zeros_like(np.ones(2)).device == "cpu"

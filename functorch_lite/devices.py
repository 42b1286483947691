"""Devices: the CPU and each visible CUDA GPU, through CuPy (which stays optional).

A device is named by a string: ``'cpu'`` or ``'cuda:N'``. An array lives where its buffer
lives (``x.device``): a NumPy buffer on the CPU, a CuPy buffer on its GPU. Operations run
where their operands live; operands on two devices are an error naming both (move one
with :func:`device_put`). Nothing here imports CuPy until a GPU is asked about, and
without CuPy (or without a GPU) the CPU is the only device.
"""

from __future__ import annotations

import os

from functorch_lite import tree as tree_util
from functorch_lite.config import settings
from functorch_lite.core import Array, Tracer, asarray_default, backends, to_buffer

__all__ = ["devices", "default_device", "best_device", "device_put"]

_PY_SCALARS = (bool, int, float, complex)


def _cupy():
    """The cupy module, or None where it is not installed or cannot load CUDA."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install failing at import
        return None
    return cupy


def _gpu_count() -> int:
    # CUDA itself honours CUDA_VISIBLE_DEVICES (it numbers the visible GPUs from 0); an
    # empty or -1 value hides every GPU, which needs no CuPy import to know.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no driver, or no device: CUDA raises rather than counting 0
        return 0


def devices() -> list[str]:
    """The devices arrays can live on: ``'cpu'``, then ``'cuda:0'``, ``'cuda:1'``...

    GPUs are listed when CuPy is installed and CUDA sees them (``CUDA_VISIBLE_DEVICES``
    selects which); otherwise the list is just ``['cpu']``.

    Example:
        >>> import functorch_lite as fl
        >>> fl.devices()[0]
        'cpu'
    """
    return ["cpu"] + [f"cuda:{i}" for i in range(_gpu_count())]


def default_device() -> str:
    """Where created arrays and new random keys go (set with ``fl.config.set_default_device``).

    Example:
        >>> import functorch_lite as fl
        >>> fl.default_device()
        'cpu'
    """
    return settings.default_device or "cpu"


def best_device() -> str:
    """The GPU with the most free memory, or ``'cpu'`` when there is no GPU.

    Example:
        >>> import functorch_lite as fl
        >>> fl.best_device() in fl.devices()
        True
    """
    count = _gpu_count()
    if count == 0:
        return "cpu"
    cupy = _cupy()
    free_memory = []
    for index in range(count):
        with cupy.cuda.Device(index):
            free, _total = cupy.cuda.runtime.memGetInfo()
        free_memory.append(free)
    return f"cuda:{max(range(count), key=free_memory.__getitem__)}"


def parse_device(fn_name: str, device) -> str:
    """``device`` as ``'cpu'`` or ``'cuda:N'``, checked against :func:`devices`.

    Accepts those strings, ``'cuda'``/``'gpu'`` (the first GPU), ``'gpu:N'``, an int
    GPU index, or a ``cupy.cuda.Device``.
    """
    name = _device_name(fn_name, device)
    if name == "cpu":
        return name
    available = devices()
    if name not in available:
        why = ("; CuPy is not installed (pip install cupy-cuda12x)" if _cupy() is None
               else "")
        raise ValueError(f"{fn_name}: device {name!r} is not available{why}. "
                         f"fl.devices() lists {available}.")
    return name


def _device_name(fn_name, device):
    if isinstance(device, int) and not isinstance(device, bool):
        return f"cuda:{device}"
    if isinstance(device, str):
        name = device.strip().lower()
        if name == "cpu":
            return name
        if name in ("cuda", "gpu"):
            return "cuda:0"
        kind, _, index = name.partition(":")
        if kind in ("cuda", "gpu") and index.isdigit():
            return f"cuda:{int(index)}"
    elif type(device).__module__.startswith("cupy") and hasattr(device, "id"):
        return f"cuda:{device.id}"
    raise ValueError(f"{fn_name}: {device!r} is not a device; use 'cpu' or 'cuda:N' (one "
                     "of fl.devices())")


def device_put(x, device=None):
    """Move every array in the pytree ``x`` to ``device`` (default: the default device).

    Leaves may be arrays of any backend, NumPy arrays, Python scalars or lists; each comes
    back as an ``fl.Array`` on ``device``. An array already there is not copied. Call it
    outside transforms: a traced value cannot be moved.

    Example:
        >>> import numpy as np
        >>> import functorch_lite as fl
        >>> params = fl.device_put({"w": np.ones(2), "b": 0.0}, "cpu")
        >>> params["w"].device, type(params["b"]).__name__
        ('cpu', 'Array')
    """
    target = parse_device("fl.device_put", default_device() if device is None else device)
    return tree_util.map(lambda leaf: _put(leaf, target), x)


def _put(leaf, target):
    if isinstance(leaf, Tracer):
        raise TypeError(
            f"fl.device_put cannot move a traced value ({leaf.aval.str_short()}, inside "
            f"{leaf._trace.transform_name}); move the inputs with fl.device_put before "
            "calling the transformed function")
    buf = to_buffer(leaf)
    if type(buf) in _PY_SCALARS:
        buf = asarray_default(buf)
    on_gpu = type(buf).__module__.startswith("cupy")
    if target == "cpu":
        return Array(buf.get() if on_gpu else buf)
    index = int(target.partition(":")[2])
    if on_gpu and buf.device.id == index:
        return leaf if type(leaf) is Array else Array(buf)
    cupy = _cupy()
    with cupy.cuda.Device(index):
        # ndarray.copy() copies onto the current device, also from another GPU.
        moved = buf.copy() if on_gpu else cupy.asarray(buf)
    backends.gpu_seen = True
    return Array(moved)


def place_on_default_device(array):
    """``array`` moved to the default device (no-op on the CPU default)."""
    if settings.default_device is None:
        return array
    return _put(array, settings.default_device)

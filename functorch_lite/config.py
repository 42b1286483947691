"""Library-wide settings: default dtypes (``enable_x64``) and the default device.

The settings live in one small object so the hot paths read a single attribute.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = ["enable_x64", "x64_enabled", "default_float_dtype", "default_int_dtype"]


class _Settings:
    __slots__ = ("x64", "float_dtype", "complex_dtype", "default_device")

    def __init__(self):
        self.default_device = None  # None: the CPU (see functorch_lite.devices)
        self.set_x64(os.environ.get("FL_ENABLE_X64", "0").lower() in ("1", "true", "yes"))

    def set_x64(self, on: bool):
        self.x64 = bool(on)
        self.float_dtype = np.dtype(np.float64 if on else np.float32)
        self.complex_dtype = np.dtype(np.complex128 if on else np.complex64)


settings = _Settings()


class _Switch(contextlib.ContextDecorator):
    """Returned by the setters below: the new setting is already on; used as a context
    manager, it calls ``restore`` on exit to put the previous one back."""

    def __init__(self, restore):
        self._restore = restore

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._restore()
        return False


def enable_x64(on: bool = True) -> _Switch:
    """Make float64 (instead of float32) the default dtype of created float arrays.

    Inputs always keep their dtype; this only changes what ``fnp.array([1.0])``,
    ``fnp.zeros(3)``, random draws and initializers produce. Works as a plain call or
    as a context manager that restores the previous setting.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> with fl.config.enable_x64():
        ...     print(fnp.zeros(2).dtype)
        float64
        >>> print(fnp.zeros(2).dtype)
        float32
    """
    previous = settings.x64
    settings.set_x64(on)
    return _Switch(lambda: settings.set_x64(previous))


def x64_enabled() -> bool:
    """Whether float64 is the default float dtype.

    Example:
        >>> import functorch_lite as fl
        >>> fl.config.x64_enabled()
        False
    """
    return settings.x64


def default_float_dtype() -> np.dtype:
    """The dtype of created float arrays: float32, or float64 under ``enable_x64``.

    Example:
        >>> import functorch_lite as fl
        >>> fl.config.default_float_dtype()
        dtype('float32')
    """
    return settings.float_dtype


def default_int_dtype() -> np.dtype:
    """The dtype of created integer arrays (int64, as NumPy and PyTorch).

    Example:
        >>> import functorch_lite as fl
        >>> fl.config.default_int_dtype()
        dtype('int64')
    """
    return np.dtype(np.int64)


def set_default_device(device) -> _Switch:
    """Make ``device`` (``'cpu'``, ``'cuda:N'``; None: the CPU) the default device.

    New random keys (and with them every draw) are made there. Works as a plain call or
    as a context manager that restores the previous default.

    Example:
        >>> import functorch_lite as fl
        >>> with fl.config.set_default_device("cpu"):
        ...     print(fl.default_device())
        cpu
    """
    from functorch_lite.devices import parse_device  # devices imports this module

    previous = settings.default_device
    name = "cpu" if device is None else parse_device("fl.config.set_default_device", device)
    settings.default_device = None if name == "cpu" else name
    return _Switch(lambda: setattr(settings, "default_device", previous))


__all__ += ["set_default_device"]

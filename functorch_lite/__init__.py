"""functorch_lite: JAX-style functional transforms (grad, vmap, jit) over NumPy and CuPy.

Example:
    >>> import functorch_lite as fl
    >>> import functorch_lite.numpy as fnp
    >>> fl.grad(lambda x: fnp.sum(x ** 2))(fnp.array([1.0, 2.0]))
    Array([2., 4.], dtype=float32)
"""

from functorch_lite import (
    config,
    data,
    debug,
    distributed,
    nn,
    numpy,  # noqa: F401  (import registers the primitives)
    optim,
    random,
    train,
    tree,
)
from functorch_lite._io import load, save
from functorch_lite.autodiff import (
    checkpoint,
    custom_jvp,
    custom_vjp,
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)
from functorch_lite.batching import vmap
from functorch_lite.control_flow import cond, fori_loop, scan, switch, while_loop
from functorch_lite.core import Array, ConcretizationError, LeakedTracerError, Tracer
from functorch_lite.devices import best_device, default_device, device_put, devices
from functorch_lite.jit import disable_jit, jit, make_graph

__version__ = "0.1.0"

__all__ = [
    "Array", "Tracer", "ConcretizationError", "LeakedTracerError", "config", "debug", "tree",
    "grad", "value_and_grad", "vjp", "jvp", "jacfwd", "jacrev", "hessian", "stop_gradient",
    "custom_vjp", "custom_jvp", "checkpoint", "vmap", "jit", "make_graph", "disable_jit",
    "cond", "switch", "while_loop", "fori_loop", "scan",
]
__all__ += ["data", "optim", "random", "devices", "device_put", "default_device", "best_device"]
__all__ += ["train", "save", "load"]
__all__ += ["nn"]
__all__ += ["distributed"]

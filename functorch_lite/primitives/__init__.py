"""Primitive families; importing this package registers every primitive in ``core.registry``.

Each module declares its primitives once, with impl, shape rule, jvp, vjp, batch and emit
side by side (see ``rules`` for the helpers that derive them).
"""

from functorch_lite.primitives import (  # noqa: F401, E501
    control_flow,  # noqa: F401, E402
    elementwise,
    indexing,
    linalg,
    random,
    reductions,
    shape,
)

"""Property tests: clipping and masking on random pytrees."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import functorch_lite.numpy as fnp
from functorch_lite import optim, tree

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@st.composite
def pytrees(draw):
    """A dict holding a list and a tuple of float32 arrays, with a random bool mask."""
    n = draw(st.integers(1, 5))
    arrays = []
    for _ in range(n):
        shape = draw(shapes)
        size = int(np.prod(shape))
        values = draw(st.lists(st.floats(-100, 100, width=32), min_size=size, max_size=size))
        arrays.append(fnp.asarray(np.array(values, np.float32).reshape(shape)))
    mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    split = draw(st.integers(0, n))
    return ({"list": arrays[:split], "tuple": tuple(arrays[split:])},
            {"list": mask[:split], "tuple": tuple(mask[split:])})


def global_norm(t):
    return float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in tree.leaves(t))))


@given(pytrees(), st.floats(0.1, 50))
def test_clip_by_global_norm_bounds_the_norm_and_keeps_directions(data, max_norm):
    grads, _ = data
    clipped, _ = optim.clip_by_global_norm(max_norm).update(grads, optim.EmptyState())
    norm = global_norm(grads)
    assert global_norm(clipped) <= max_norm * (1 + 1e-5) + 1e-6
    factor = min(1.0, max_norm / norm) if norm > 0 else 1.0
    for g, c in zip(tree.leaves(grads), tree.leaves(clipped)):
        np.testing.assert_allclose(np.asarray(c), np.asarray(g) * factor, rtol=1e-5, atol=1e-6)


@given(pytrees())
def test_masked_and_freeze_select_exactly_the_mask(data):
    grads, mask = data
    scaled, _ = optim.masked(optim.scale(3.0), mask).update(
        grads, optim.masked(optim.scale(3.0), mask).init(grads), grads)
    frozen, _ = optim.freeze(mask).update(grads, optim.freeze(mask).init(grads), grads)
    for g, s, f, m in zip(tree.leaves(grads), tree.leaves(scaled), tree.leaves(frozen),
                          tree.leaves(mask)):
        np.testing.assert_array_equal(np.asarray(s), np.asarray(g) * (3.0 if m else 1.0))
        np.testing.assert_array_equal(np.asarray(f), np.zeros_like(g) if m else np.asarray(g))
    assert tree.structure(scaled) == tree.structure(grads) == tree.structure(frozen)

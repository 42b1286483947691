"""``nn.Sequential``: layers applied in order; params and state are lists, one per layer."""

import functorch_lite.numpy as fnp
from functorch_lite import random
from functorch_lite.nn._module import Lambda, Module, split_key

__all__ = ["Sequential"]


class Sequential(Module):
    """Apply ``layers`` in order. Plain callables (``nn.relu``) are wrapped as parameterless
    layers. ``params`` and ``state`` are LISTS with one entry per layer (``{}`` for a layer
    without parameters), so ``params[0]["weight"]`` is the first layer's weight, like
    ``model[0].weight`` in PyTorch. With a key, each layer gets its own (split) key.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> from functorch_lite import nn
        >>> model = nn.Sequential([nn.Linear(4, 8), nn.relu, nn.Linear(8, 2)])
        >>> params, state = model.init(fl.random.key(0))
        >>> y, state = model.apply(params, state, fnp.ones((3, 4)))
        >>> y.shape, [sorted(p) for p in params]
        ((3, 2), [['bias', 'weight'], [], ['bias', 'weight']])
    """

    def __init__(self, layers):
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not (isinstance(layer, Module) or callable(layer)):
                raise TypeError(f"nn.Sequential: layer {i} is a {type(layer).__name__}, not "
                                f"an nn.Module or a function")
        self.layers = [layer if isinstance(layer, Module) else Lambda(layer)
                       for layer in layers]

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def init(self, key):
        pairs = [layer.init(k) for layer, k in zip(self.layers, split_key(key, len(self)),
                                                    strict=True)]
        return [p for p, _ in pairs], [s for _, s in pairs]

    def _param_keys(self):
        return None

    def _named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer, (i,)

    def forward(self, params, state, x, *, key, train):
        _check_lists(self, params, state)
        new_state = []
        for layer, p, s, k in zip(self.layers, params, state, split_key(key, len(self)),
                                  strict=True):
            x, s = layer.apply(p, s, x, key=k, train=train)
            new_state.append(s)
        return x, new_state

    def _output_shapes(self, params, x):
        # Each layer runs in eval mode on its initial state (BatchNorm: the running stats
        # it starts with), which is enough to know the shapes.
        shapes = {}
        if x is None:  # summary(params) without an input: no output shapes
            return shapes
        for layer, p in zip(self.layers, params, strict=True):
            x, _ = layer.apply(p, layer.init(random.key(0))[1], x, train=False)
            shapes[id(layer)] = _shape_of(x)
        return shapes

    def _check_structure(self, params, where, path):
        if not isinstance(params, (list, tuple)) or len(params) != len(self):
            raise ValueError(f"{where}: params{path} should be a list of {len(self)} entries "
                             f"(one per layer), got {_describe(params)} (params from a "
                             f"different model? make them with model.init(key))")


def _shape_of(value):
    if isinstance(value, tuple):
        return tuple(_shape_of(v) for v in value)
    return tuple(fnp.shape(value))


def _describe(tree):
    if isinstance(tree, (list, tuple)):
        return f"a {type(tree).__name__} of length {len(tree)}"
    return f"a {type(tree).__name__}"


def _check_lists(model, params, state):
    for name, tree in (("params", params), ("state", state)):
        if not isinstance(tree, (list, tuple)) or len(tree) != len(model):
            raise ValueError(f"nn.Sequential.apply: {name} must be a list with one entry per "
                             f"layer ({len(model)}), got {_describe(tree)} (from a different "
                             f"model? make them with model.init(key))")

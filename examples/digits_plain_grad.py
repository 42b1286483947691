"""Train an MLP on scikit-learn's bundled digits with ``fl.grad`` and a plain update loop.

No ``nn``, ``optim`` or ``train``: the parameters are a dict of arrays, the model and the
loss are ``fnp`` code, ``fl.grad`` differentiates the loss, and each step is one line of
SGD with momentum over the pytree. This is what the core alone offers; the README's main
command (``examples/train_digits.py``) does the same job with the full toolkit. Prints the
training loss every ten epochs and the test accuracy at the end (expect >= 0.95).

Run:  python examples/digits_plain_grad.py [--epochs 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import functorch_lite as fl
import functorch_lite.numpy as fnp


def init_params(rng, sizes):
    """He-initialized weights and zero biases, as ``{"w0": ..., "b0": ..., ...}``."""
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        params[f"w{i}"] = fnp.asarray(w.astype(np.float32))
        params[f"b{i}"] = fnp.zeros(n_out, fnp.float32)
    return params


def logits(params, x):
    layers = len(params) // 2
    for i in range(layers):
        x = x @ params[f"w{i}"] + params[f"b{i}"]
        if i < layers - 1:
            x = fnp.maximum(x, 0.0)
    return x


def loss(params, x, y):
    """Mean softmax cross-entropy of integer labels ``y``."""
    z = logits(params, x)
    top = fnp.max(z, axis=1, keepdims=True)
    logp = z - top - fnp.log(fnp.sum(fnp.exp(z - top), axis=1, keepdims=True))
    return -fnp.mean(fnp.take_along_axis(logp, y[:, None], axis=1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)
    rng = np.random.default_rng(args.seed)
    params = init_params(rng, [64, 128, 64, 10])
    velocity = fl.tree.map(fnp.zeros_like, params)
    grad_fn = fl.grad(loss)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        for lo in range(0, len(order), args.batch_size):
            batch = order[lo:lo + args.batch_size]
            xb, yb = fnp.asarray(x_train[batch]), fnp.asarray(y_train[batch])
            grads = grad_fn(params, xb, yb)
            velocity = fl.tree.map(lambda v, g: 0.9 * v + g, velocity, grads)
            params = fl.tree.map(lambda p, v: p - args.lr * v, params, velocity)
        if epoch % 10 == 9 or epoch == args.epochs - 1:
            train_loss = float(loss(params, fnp.asarray(x_train), fnp.asarray(y_train)))
            print(f"epoch {epoch + 1:3d}  training loss {train_loss:.4f}")
    elapsed = time.perf_counter() - start

    predictions = np.asarray(fnp.argmax(logits(params, fnp.asarray(x_test)), axis=1))
    test_acc = float(np.mean(predictions == y_test))
    print(f"test accuracy {test_acc:.4f}  ({args.epochs} epochs in {elapsed:.1f} s)")
    if test_acc < 0.95:
        raise SystemExit(f"test accuracy {test_acc:.4f} is below 0.95")


if __name__ == "__main__":
    main()

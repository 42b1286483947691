"""Train a small MLP classifier on scikit-learn's bundled digits with ``fl.grad``.

The whole model is two pure functions of a parameter pytree: ``predict`` and ``loss``.
Training is a plain loop: gradient, SGD-with-momentum update, repeat. Prints the loss per
epoch and the test accuracy at the end (expect >= 0.95).

Run:  python examples/train_digits.py [--epochs 30] [--seed 0]
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
    """He-initialized weights and zero biases for a fully connected net."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.standard_normal((n_in, n_out)).astype(np.float32) * np.sqrt(2.0 / n_in)
        params.append({"w": fnp.asarray(w), "b": fnp.zeros(n_out)})
    return params


def predict(params, x):
    """Logits of the MLP: relu hidden layers, linear output."""
    for layer in params[:-1]:
        x = fnp.maximum(x @ layer["w"] + layer["b"], 0.0)
    last = params[-1]
    return x @ last["w"] + last["b"]


def loss(params, x, y_onehot):
    """Mean softmax cross-entropy (computed stably with logsumexp)."""
    logits = predict(params, x)
    shifted = logits - fl.stop_gradient(fnp.max(logits, axis=1, keepdims=True))
    log_probs = shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=1, keepdims=True))
    return -fnp.mean(fnp.sum(y_onehot * log_probs, axis=1))


def accuracy(params, x, y):
    return float(np.mean(np.asarray(fnp.argmax(predict(params, x), axis=1)) == y))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)
    onehot = np.eye(10, dtype=np.float32)[y_train]

    rng = np.random.default_rng(args.seed)
    params = init_params(rng, [64, 128, 64, 10])
    velocity = fl.tree.map(fnp.zeros_like, params)
    grad_fn = fl.value_and_grad(loss)
    momentum = 0.9

    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), args.batch_size):
            idx = order[i:i + args.batch_size]
            value, grads = grad_fn(params, fnp.asarray(x_train[idx]), fnp.asarray(onehot[idx]))
            velocity = fl.tree.map(lambda v, g: momentum * v + g, velocity, grads)
            params = fl.tree.map(lambda p, v: p - args.lr * v, params, velocity)
            total += float(value) * len(idx)
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {total / len(x_train):.4f}  "
                  f"train acc {accuracy(params, x_train, y_train):.3f}")
    elapsed = time.perf_counter() - start
    test_acc = accuracy(params, x_test, y_test)
    print(f"test accuracy {test_acc:.4f}  ({args.epochs} epochs in {elapsed:.1f} s)")
    if test_acc < 0.95:
        raise SystemExit(f"test accuracy {test_acc:.4f} is below 0.95")


if __name__ == "__main__":
    main()

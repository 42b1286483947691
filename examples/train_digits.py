"""Train a small MLP classifier on scikit-learn's bundled digits with ``fl.train.fit``.

The model is an ``fl.nn.Sequential`` (hyperparameters only; its parameters are a pytree),
the data comes from ``fl.data`` loaders, the optimizer is ``fl.optim.adam`` and
``fl.train.fit`` runs the epochs: a jitted training step, validation on a tenth of the
training set, early stopping and a checkpoint of the best epoch. Prints the metrics per
epoch and the accuracy on the held-out test quarter at the end (expect >= 0.95).

Run:  python examples/train_digits.py [--epochs 30] [--seed 0] [--no-progress]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import functorch_lite as fl
from functorch_lite import data, nn, optim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target)
    train_set, val_set = data.random_split(data.ArrayDataset(x_train, y_train),
                                           [0.9, 0.1], fl.random.key(args.seed))
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed)
    val_loader = data.DataLoader(val_set, batch_size=512)

    model = nn.Sequential([nn.Linear(64, 128), nn.relu, nn.Dropout(0.1),
                           nn.Linear(128, 64), nn.relu, nn.Linear(64, 10)])
    params, state = model.init(fl.random.key(args.seed))
    checkpoints = tempfile.mkdtemp(prefix="digits-")

    start = time.perf_counter()
    (params, state), _, history = fl.train.fit(
        model, params, optim.adam(args.lr), train_loader, val_loader, epochs=args.epochs,
        loss=nn.cross_entropy, metrics={"accuracy": fl.train.accuracy}, state=state,
        key=fl.random.key(args.seed), progress=not args.no_progress,
        callbacks=[fl.train.EarlyStopping("val_loss", patience=5, restore_best=True),
                   fl.train.ModelCheckpoint(checkpoints, monitor="val_accuracy", mode="max")])
    elapsed = time.perf_counter() - start

    logits, _ = model.apply(params, state, x_test)
    test_acc = float(fl.train.accuracy(logits, y_test))
    print(f"final loss {history['loss'][-1]:.4f}  test accuracy {test_acc:.4f}  "
          f"({len(history['loss'])} epochs in {elapsed:.1f} s; checkpoints in {checkpoints})")
    if test_acc < 0.95:
        raise SystemExit(f"test accuracy {test_acc:.4f} is below 0.95")


if __name__ == "__main__":
    main()

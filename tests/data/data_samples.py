"""Datasets and collate functions for the worker tests, in their own light module: worker
processes (started by 'forkserver') import it by name to unpickle them."""

import os

import numpy as np


class Squares:
    """Sample i: {"x": [i, i, i] (float32), "y": i * i, "pid": the process that read it}."""

    def __init__(self, n, fail_at=None, exit_at=None):
        self.n, self.fail_at, self.exit_at = n, fail_at, exit_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"corrupt record {i}")
        if i == self.exit_at:
            os._exit(3)  # a worker dying without a word (as a native crash would)
        return {"x": np.full(3, i, np.float32), "y": i * i, "pid": os.getpid()}


def sum_collate(samples):
    """A custom collate_fn: the sum of the samples' x, and their y as a list."""
    return {"x_sum": np.sum([s["x"] for s in samples], axis=0),
            "y": np.array([s["y"] for s in samples])}

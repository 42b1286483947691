"""Datasets and a dataloader whose batches are a pure function of (dataset, seed, epoch).

``DataLoader(ds, batch_size, shuffle=True, seed=s).epoch(e)`` yields the same batches for
the same ``s`` and ``e`` in any process, so a training run is reproducible and resumable
from its epoch number alone. In-memory arrays (:class:`ArrayDataset`, and
:class:`Subset` s of one) are batched with one fancy index per leaf; any other dataset is
read sample by sample and collated, optionally in worker processes.

Example:
    >>> import numpy as np
    >>> import functorch_lite as fl
    >>> ds = fl.data.ArrayDataset({"x": np.zeros((100, 3), np.float32), "y": np.arange(100)})
    >>> train, val = fl.data.random_split(ds, [80, 20], fl.random.key(0))
    >>> loader = fl.data.DataLoader(train, batch_size=32, shuffle=True, seed=0)
    >>> [batch["x"].shape for batch in loader.epoch(0)]
    [(32, 3), (32, 3), (16, 3)]
"""

from functorch_lite.data._collate import default_collate
from functorch_lite.data._datasets import ArrayDataset, Dataset, Subset, random_split
from functorch_lite.data._loader import DataLoader

__all__ = ["Dataset", "ArrayDataset", "Subset", "random_split", "DataLoader",
           "default_collate"]

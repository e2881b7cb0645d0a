"""Data: named datasets and files -> float tensors plus optional labels, split three ways.

    splits = load_data("fashion-mnist")        # or "digits", "x.npz", "table.csv", "images/"
    for x, y in iterate_batches(splits.train, 128, shuffle=True): ...
"""
from .batching import iterate_batches
from .builtin import DATASET_NAMES
from .load import load_data
from .types import DataInfo, DataSplits, TensorData

__all__ = ["load_data", "TensorData", "DataInfo", "DataSplits", "iterate_batches", "DATASET_NAMES"]

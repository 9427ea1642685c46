"""loomnet: neural networks from first principles on NumPy, trained in parallel with threads.

The package is laid out by role:

- :mod:`loomnet.engine`: layers, activations, losses, initialisers, the network, optimisers,
  schedules, preprocessing, metrics;
- :mod:`loomnet.training`: the training step, the epoch loop and its data objects;
- :mod:`loomnet.parallel`: the thread runners (synchronous, Hogwild, locked, ``workers="auto"``);
- :mod:`loomnet.distributed`: the MPI runner;
- :mod:`loomnet.search`: model search on threads, processes or MPI;
- :mod:`loomnet.io`: model files, checkpoints, tables, built-in datasets;
- :mod:`loomnet.cli`: the ``loomnet`` command.
"""

from . import parallel, search
from ._moved import register as _register_moved_modules
from ._version import __version__
from .engine import activations, initializers, losses, metrics, optimizers, preprocessing, schedules
from .engine.batchnorm import BatchNorm
from .engine.blocks import LayerNorm, PeriodicEmbedding, Residual
from .engine.embedding import CategoricalEmbedding
from .engine.hooks import SAVE as _SAVE
from .engine.layers import ActivationLayer, Dense, Dropout, Layer, Workspace
from .engine.network import Sequential
from .engine.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from .engine.preprocessing import MinMaxScaler, StandardScaler, train_test_split
from .io import datasets
from .io.modelfile import ModelFileError, load_model, save_model
from .search import bagging, cross_validate, grid_search, random_search
from .training import (
    Callback,
    EarlyStopping,
    History,
    OverfittingMonitor,
    OverfittingWarning,
    Trainer,
    TrainingDivergedError,
    fit,
)
from .training.loader import PrefetchLoader
from .training.streaming import fit_stream

_register_moved_modules()
_SAVE.save = save_model

__all__ = [
    "SGD", "ActivationLayer", "Adagrad", "Adam", "AdamW", "BatchNorm", "Callback", "Dense", "Dropout",
    "CategoricalEmbedding", "EarlyStopping", "History", "Layer", "LayerNorm", "PeriodicEmbedding", "Residual",
    "MinMaxScaler",
    "OverfittingMonitor",
    "OverfittingWarning",
    "RMSprop", "Sequential", "StandardScaler",
    "Trainer", "TrainingDivergedError", "Workspace", "__version__", "activations", "datasets", "fit",
    "initializers", "losses", "metrics", "optimizers", "parallel", "preprocessing", "schedules", "search",
    "train_test_split", "PrefetchLoader", "bagging", "cross_validate", "fit_stream", "grid_search",
    "random_search", "ModelFileError", "load_model", "save_model",
]

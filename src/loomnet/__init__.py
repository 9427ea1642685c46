"""loomnet: neural networks from first principles on NumPy, trained in parallel with threads."""

from . import activations, datasets, initializers, losses, metrics, optimizers, parallel, preprocessing, schedules
from .layers import ActivationLayer, Dense, Dropout, Layer, Workspace
from .modelfile import ModelFileError, load_model, save_model
from .network import Sequential
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from .parallel import PrefetchLoader, bagging, cross_validate, fit_stream, grid_search, random_search
from .preprocessing import MinMaxScaler, StandardScaler, train_test_split
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

__version__ = "0.2.0"

__all__ = [
    "SGD", "ActivationLayer", "Adagrad", "Adam", "AdamW", "Callback", "Dense", "Dropout",
    "EarlyStopping", "History", "Layer", "MinMaxScaler", "OverfittingMonitor", "OverfittingWarning",
    "RMSprop", "Sequential", "StandardScaler",
    "Trainer", "TrainingDivergedError", "Workspace", "activations", "datasets", "fit", "initializers",
    "losses", "metrics", "optimizers", "parallel", "preprocessing", "schedules", "train_test_split",
    "PrefetchLoader", "bagging", "cross_validate", "fit_stream", "grid_search", "random_search",
    "ModelFileError", "load_model", "save_model",
]

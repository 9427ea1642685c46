"""Files: model files (``.loom``, safetensors layout, no pickle), checkpoints, tables (CSV,
Parquet, ``.npy``) and the built-in datasets.

>>> from loomnet.io import read_frame, TableEncoder
>>> frame = read_frame("builtin:iris")
>>> frame.n_rows, frame.columns[:2]
(150, ['sepal length (cm)', 'sepal width (cm)'])
"""

from . import datasets
from .checkpoint import read_checkpoint
from .encoder import TableEncoder
from .frames import DataError, Frame, read_frame
from .modelfile import LoomFile, ModelFileError, load_model, open_model, read_header, save_model
from .tables import read_training_table

__all__ = ["DataError", "Frame", "LoomFile", "ModelFileError", "TableEncoder", "datasets", "load_model",
           "open_model", "read_checkpoint", "read_frame", "read_header", "read_training_table", "save_model"]

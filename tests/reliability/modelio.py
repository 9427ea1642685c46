"""The model-file API the reliability tests use (one place to adapt if it changes).

Until loomnet.io.modelfile exists, a JSON + .npy stand-in lets the engine-only tests run.
"""

from __future__ import annotations

import json
import os

import numpy as np

from loomnet import Sequential

try:
    from loomnet.io.modelfile import ModelFileError, load_model, save_model
except ImportError:  # the model-file module is not there yet
    class ModelFileError(ValueError):
        pass

    def save_model(model: Sequential, path) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as f:
            header = json.dumps(model.get_config()).encode()
            f.write(len(header).to_bytes(8, "little") + header)
            np.save(f, model.params.copy())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load_model(path) -> Sequential:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            config = json.loads(f.read(size))
            params = np.load(f, allow_pickle=False)
        return Sequential.from_config(config, params)

__all__ = ["ModelFileError", "load_model", "save_model"]

"""Save/load through loomnet's model files when they exist; a JSON + .npy stand-in until then."""

from __future__ import annotations

import json
import os

import numpy as np

from loomnet import Sequential

try:
    from loomnet import modelfile
except ImportError:  # the model-file module is not built yet
    modelfile = None


def save_model(model: Sequential, path) -> None:
    if modelfile is not None:
        modelfile.save(model, path)
        return
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        header = json.dumps(model.get_config()).encode()
        f.write(len(header).to_bytes(8, "little") + header)
        np.save(f, model.params.copy())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_model(path) -> Sequential:
    if modelfile is not None:
        return modelfile.load(path)
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        config = json.loads(f.read(size))
        params = np.load(f, allow_pickle=False)
    return Sequential.from_config(config, params)

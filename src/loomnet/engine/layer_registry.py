"""Every layer kind by name, and rebuilding layers from their configuration (model files)."""

from __future__ import annotations

from typing import Any

from .activations import get_activation
from .batchnorm import BatchNorm
from .blocks import LayerNorm, PeriodicEmbedding, Residual, residual_from_config
from .embedding import CategoricalEmbedding
from .layers import ActivationLayer, Dense, Dropout, Layer

LAYERS: dict[str, type[Layer]] = {"dense": Dense, "activation": ActivationLayer, "dropout": Dropout,
                                  "layer_norm": LayerNorm, "residual": Residual, "periodic": PeriodicEmbedding,
                                  "embedding": CategoricalEmbedding, "batch_norm": BatchNorm}
MAX_NESTING = 4  # residual blocks inside residual blocks: a hostile file could nest them without end


def layer_from_config(config: dict[str, Any], depth: int = 0) -> Layer:
    """Rebuild a layer from ``get_config()`` output (model files are untrusted: every field is checked)."""
    if not isinstance(config, dict):
        raise ValueError(f"a layer's configuration must be an object, got {type(config).__name__}")
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    if kind not in LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}; valid kinds are: {', '.join(sorted(LAYERS))}")
    if kind == "residual":
        if depth >= MAX_NESTING:
            raise ValueError(f"residual blocks are nested more than {MAX_NESTING} deep")
        return residual_from_config(cfg, lambda c: layer_from_config(c, depth + 1))
    if "activation" in cfg:
        cfg["activation"] = get_activation(cfg["activation"])
    return LAYERS[kind](**cfg)

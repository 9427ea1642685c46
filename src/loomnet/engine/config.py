"""A network's configuration: everything but the weights, as JSON-compatible data, and back.

Model files store this (no pickle); :func:`model_from_config` checks a configuration before it
allocates anything, because a hostile file may claim a gigantic network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .batchnorm import batch_norms
from .layer_registry import layer_from_config
from .layers import Dropout, Layer
from .losses import get_loss
from .optimizers import get_optimizer
from .params import ParamLayout
from .preprocessing import LabelEncoder, Transformer, get_scaler, scaler_from_dict

if TYPE_CHECKING:
    from .network import Sequential


def model_config(model: Sequential) -> dict[str, Any]:
    """Everything but the weights of ``model``, as JSON-compatible data."""
    return {
        "layers": [layer.get_config() for layer in model.layers],
        "loss": model.loss.get_config(),
        "optimizer": model.optimizer.get_config(),
        "l2": model.l2,
        "dtype": model.dtype.name,
        "seed": model.seed,
        "n_features": model.n_features,
        "preprocess": model.preprocess.to_dict() if _fitted(model.preprocess) else _kind(model.preprocess),
        "target_preprocess": (model.target_preprocess.to_dict() if _fitted(model.target_preprocess)
                              else _kind(model.target_preprocess)),
        "classes": None if model.classes_ is None else model.classes_.tolist(),
        "feature_names": model.feature_names,
    }


def model_from_config(cls: type[Sequential], config: dict[str, Any], params: ArrayLike | None = None) -> Sequential:
    """Rebuild a ``cls`` model from :func:`model_config` output and (optionally) its flat parameters."""
    model = cls(
        [layer_from_config(c) for c in config["layers"]],
        loss=get_loss(config["loss"]),
        optimizer=get_optimizer(config["optimizer"]),
        l2=config.get("l2", 0.0),
        preprocess=_scaler_or_kind(config.get("preprocess")),
        target_preprocess=_scaler_or_kind(config.get("target_preprocess")),
        dtype=config.get("dtype", "float32"),
        seed=config.get("seed"),
    )
    n_features = config.get("n_features")
    if params is not None and not n_features:
        raise ValueError(f"the configuration gives n_features={n_features!r}, so the parameters have no place")
    if n_features:
        # Checked before allocating: a hostile config may claim a gigantic network.
        if params is not None and (expected := _param_count(model.layers, n_features)) != np.size(params):
            raise ValueError(f"the configuration describes {expected:,} parameters, "
                             f"but {np.size(params):,} were given")
        model.build(n_features)
        if params is not None:
            model.set_params(np.asarray(params, dtype=model.dtype))
            for *_, views in batch_norms(model.layers, model.layer_params):
                if not (np.isfinite(views["running_var"]).all() and (views["running_var"] >= 0).all()):
                    raise ValueError("a BatchNorm's running variance is negative or not finite")
        for name, scaler, width in (("preprocess", model.preprocess, model.n_features),
                                    ("target_preprocess", model.target_preprocess, model.n_outputs)):
            if _fitted(scaler) and getattr(scaler, "n_features_in_", width) != width:
                raise ValueError(f"the stored {name} was fitted on {scaler.n_features_in_} columns, "
                                 f"the network has {width}")
    classes = config.get("classes")
    if classes is not None:
        n_classes = 2 if model.loss.task == "binary" else getattr(model, "n_outputs", None)
        if not isinstance(classes, list) or (n_classes is not None and len(classes) != n_classes):
            raise ValueError(f"the configuration lists classes {str(classes)[:80]}, "
                             f"but the network predicts {n_classes} classes")
        all_text = all(isinstance(c, str) for c in classes)
        all_numbers = all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes)
        all_flags = all(isinstance(c, bool) for c in classes)
        if not (all_text or all_numbers or all_flags) or len(set(classes)) != len(classes):
            raise ValueError(f"the configuration's classes {str(classes)[:80]} must be distinct labels "
                             "of one kind (all text or all numbers)")
        model._label_encoder = LabelEncoder.from_dict({"classes": classes})
        model.classes_ = model._label_encoder.classes_
    model.feature_names = config.get("feature_names")
    return model


def _param_count(layers: Sequence[Layer], n_features: Any) -> int:
    """How many parameters these layers have on ``n_features`` inputs, found without allocating them."""
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    width = int(n_features)
    for layer in layers:
        width = layer.build(width)
    return ParamLayout(layers).size


def _fitted(t: Transformer | None) -> bool:
    return t is not None and getattr(t, "fitted_", False)


def _kind(t: Transformer | None) -> str | None:
    return None if t is None else t.kind


def _scaler_or_kind(value: dict | str | None) -> Transformer | None:
    if isinstance(value, dict):
        return scaler_from_dict(value)
    return get_scaler(value)


def model_summary(model: Sequential) -> str:
    """A table of the layers of ``model``: kind, output shape, activation, parameter count."""
    views = model.layer_params if model.built else [{}] * len(model.layers)
    lines = [f"{'layer':<12}{'output':>12}  {'activation':<14}{'params':>10}"]
    for layer, params in zip(model.layers, views, strict=True):
        activation = getattr(layer, "activation", None)
        detail = activation.name if activation is not None else (
            f"rate {layer.rate:g}" if isinstance(layer, Dropout) else "")
        shape = f"(None, {layer.n_out})" if getattr(layer, "n_out", None) else "?"
        count = sum(v.size for v in params.values())
        lines.append(f"{layer.kind:<12}{shape:>12}  {detail:<14}{count:>10,}")
    fused = f"; {model.fused_output} applied by the loss" if model.fused_output else ""
    lines.append(f"total parameters: {model.n_params:,} ({model.dtype.name}); loss {model.loss.name}{fused}")
    return "\n".join(lines)

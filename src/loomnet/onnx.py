"""Export a trained network to ONNX, to run it in onnxruntime (C#, Java, the browser...) without loomnet.

    >>> from loomnet.onnx import export
    >>> export(model, "model.onnx")                       # doctest: +SKIP
    >>> export(fitted_estimator, "clf.onnx", dtype="float64")   # doctest: +SKIP

The graph does what ``predict`` and ``predict_proba`` do on raw input: the fitted input scaling,
every layer and activation (dropout is the identity), then for classifiers the probabilities
(output ``probabilities``) and the class labels (output ``label``), for regressors the values in
target units (output ``variable``). Models trained by ``loomnet train`` on a table also impute
missing numbers (NaN in, the stored fill used) and add the missing-indicator columns; a table
with categorical columns is refused, naming them (their one-hot encoding is not in the graph).
Opset ``OPSET``; float32 by default, float64 on request. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

OPSET = 17

__all__ = ["OPSET", "ExportError", "export"]


class ExportError(ValueError):
    """What the model holds cannot be expressed in the ONNX graph; the message names it.

    A ``ValueError``; ``loomnet export`` prints it as its one-line error and exits 2.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.onnx import ExportError, export
    >>> try:
    ...     export(ln.Sequential([ln.Dense(3)]))
    ... except ExportError as exc:
    ...     print(exc)
    the model has no parameters yet: fit it before exporting
    """


def export(model: Any, path: str | os.PathLike | None = None, *, dtype: str = "float32",
           encoding: dict[str, Any] | None = None) -> Any:
    """Write ``model`` (a built :class:`~loomnet.Sequential` or a fitted loomnet estimator) as ONNX.

    Parameters
    ----------
    model : Sequential or loomnet.sklearn estimator
        The model to export.
    path : str or None
        Where to write the ``.onnx`` file (None: only return the model proto).
    dtype : {'float32', 'float64'}
        The graph's floating type (inputs, weights, outputs).
    encoding : dict or None
        A ``loomnet train`` table encoding (a model file's ``extra["input"]``): numeric columns are
        imputed in the graph; categorical ones are refused.

    Returns
    -------
    onnx.ModelProto
        The checked model.

    Raises
    ------
    ExportError
        If the model is not fitted, ``dtype`` is unknown, or something (a layer, a scaler, categorical
        table columns) has no ONNX form here; the message names it.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.onnx import export
    >>> iris = ln.datasets.load("iris")
    >>> model = ln.Sequential([ln.Dense(8, "relu"), ln.Dense(3)], seed=0)
    >>> _ = model.fit(iris.X, iris.y, epochs=2)
    >>> [output.name for output in export(model).graph.output]
    ['probabilities', 'label']
    """
    import onnx
    from onnx import helper

    network = getattr(model, "_model", model)
    if getattr(network, "params", None) is None:
        raise ExportError("the model has no parameters yet: fit it before exporting")
    if dtype not in ("float32", "float64"):
        raise ExportError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    graph = _Graph(np.dtype(dtype))
    x = graph.input("X", network.n_features if encoding is None else _encoded_inputs(encoding))
    if encoding is not None:
        x = _table(graph, x, encoding, network.n_features)
    x = _scaling(graph, x, network.preprocess)
    for layer, views in zip(network.layers, network.layer_params, strict=True):
        x = _layer(graph, x, layer, views)
    _outputs(graph, x, network)
    proto = helper.make_model(
        helper.make_graph(graph.nodes, "loomnet", graph.inputs, graph.outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="loomnet")
    proto.ir_version = min(proto.ir_version, 10)  # what onnxruntime releases of 2025-2026 read
    onnx.checker.check_model(proto)
    if path is not None:
        from .io.atomic import atomic_write

        atomic_write(path, proto.SerializeToString())
    return proto


class _Graph:
    """Nodes, constants and names of the graph being built."""

    def __init__(self, dtype: np.dtype):
        from onnx import TensorProto

        self.dtype = dtype
        self.elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def input(self, name: str, width: int) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, self.elem, [None, width]))
        return name

    def const(self, value: Any, stem: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attributes))
        return out

    def output(self, name: str, source: str, elem: int, shape: list[Any]) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node("Identity", [source], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))


def _encoded_inputs(encoding: dict[str, Any]) -> int:
    columns = [c for c in encoding.get("columns", []) if c["kind"] != "dropped"]
    categorical = [c["name"] for c in columns if c["kind"] == "categorical"]
    if categorical:
        raise ExportError(f"the table encoding of the categorical column(s) {categorical} (one-hot, unknown "
                          "categories) is not expressed in the ONNX graph; export a model trained on numbers, "
                          "or encode those columns before the graph")
    return len(columns)


def _table(graph: _Graph, x: str, encoding: dict[str, Any], n_features: int) -> str:
    """Raw numeric columns in (NaN where missing): fills, and the missing-indicator columns."""
    columns = [c for c in encoding["columns"] if c["kind"] != "dropped"]
    fills = np.array([np.nan if c.get("fill") is None else c["fill"] for c in columns])
    if np.isnan(fills).any():
        missing = [c["name"] for c in columns if c.get("fill") is None]
        raise ExportError(f"column(s) {missing} have no fill (trained with impute='none'): a NaN would pass through")
    gaps = graph.op("IsNaN", x)
    filled = graph.op("Where", gaps, graph.const(fills[None, :], "fill"), x)
    parts = []
    for j, col in enumerate(columns):
        index = graph.const([j], "col", np.int64)
        parts.append(graph.op("Gather", filled, index, axis=1))
        if col.get("indicator"):
            parts.append(graph.op("Cast", graph.op("Gather", gaps, index, axis=1), to=graph.elem))
    encoded = graph.op("Concat", *parts, axis=1)
    if len(parts) != n_features:
        raise ExportError(f"the stored encoding gives {len(parts)} features, the network reads {n_features}")
    return encoded


def _scaling(graph: _Graph, x: str, scaler: Any) -> str:
    if scaler is None or not getattr(scaler, "fitted_", False):
        return x
    kind = scaler.kind
    if kind == "standard":
        return graph.op("Div", graph.op("Sub", x, graph.const(scaler.mean_)), graph.const(scaler.scale_))
    if kind == "minmax":
        low, high = scaler.feature_range
        z = graph.op("Div", graph.op("Sub", x, graph.const(scaler.min_)), graph.const(scaler.span_))
        return graph.op("Add", graph.op("Mul", z, graph.const(high - low)), graph.const(low))
    if kind == "robust":
        z = graph.op("Div", graph.op("Sub", x, graph.const(scaler.center_)), graph.const(scaler.scale_))
        third = graph.op("Div", z, graph.const(3.0))
        root = graph.op("Sqrt", graph.op("Add", graph.op("Mul", third, third), graph.const(1.0)))
        return graph.op("Div", z, root)
    raise ExportError(f"the input scaler {kind!r} has no ONNX form here")


def _layer(graph: _Graph, x: str, layer: Any, views: dict[str, Any]) -> str:
    kind = layer.kind
    if kind == "dropout":
        return x  # inactive at inference
    if kind == "layer_norm":  # written out (ONNX's LayerNormalization takes a float32 epsilon)
        centred = graph.op("Sub", x, graph.op("ReduceMean", x, axes=[1], keepdims=1))
        var = graph.op("ReduceMean", graph.op("Mul", centred, centred), axes=[1], keepdims=1)
        xhat = graph.op("Div", centred, graph.op("Sqrt", graph.op("Add", var, graph.const(layer.epsilon))))
        return graph.op("Add", graph.op("Mul", xhat, graph.const(views["gamma"])), graph.const(views["beta"]))
    if kind == "batch_norm":  # inference, in loomnet's order of operations: ((x - μ)·(1/√(σ²+ε)))·γ + β
        inv_std = 1.0 / np.sqrt(views["running_var"] + layer.epsilon)
        xhat = graph.op("Mul", graph.op("Sub", x, graph.const(views["running_mean"], "mean")),
                        graph.const(inv_std, "inv_std"))
        return graph.op("Add", graph.op("Mul", xhat, graph.const(views["gamma"], "gamma")),
                        graph.const(views["beta"], "beta"))
    if kind == "periodic":  # PLR: ReLU(W_j·[cos 2πc_j x_j, sin 2πc_j x_j] + b_j) for every feature j
        d, m = layer.n_in, layer.units
        z = graph.op("Mul", graph.op("Unsqueeze", x, graph.const([2], "axes", np.int64)),
                     graph.const(2 * np.pi * views["C"][None]))
        v = graph.op("Transpose", graph.op("Concat", graph.op("Cos", z), graph.op("Sin", z), axis=2), perm=[1, 0, 2])
        h = graph.op("Transpose", graph.op("MatMul", v, graph.const(views["W"], "W")), perm=[1, 0, 2])
        h = graph.op("Relu", graph.op("Add", h, graph.const(views["b"], "b")))
        return graph.op("Reshape", h, graph.const([-1, d * m], "shape", np.int64))
    if kind == "embedding":  # passed-through columns, then block · E for each categorical block
        parts = [graph.op("Gather", x, graph.const(layer.passed.astype(np.int64), "keep", np.int64), axis=1)] \
            if len(layer.passed) else []
        for i, (start, width) in enumerate(layer.blocks):
            block = graph.op("Gather", x, graph.const(np.arange(start, start + width), "cols", np.int64), axis=1)
            parts.append(graph.op("MatMul", block, graph.const(views[f"E{i}"], "E")))
        return graph.op("Concat", *parts, axis=1)
    if kind == "residual":
        h = x
        for i, inner in enumerate(layer.layers):
            h = _layer(graph, h, inner, {name.partition(".")[2]: v for name, v in views.items()
                                         if name.partition(".")[0] == str(i)})
        return graph.op("Add", x, h)
    if kind == "dense":
        x = graph.op("MatMul", x, graph.const(views["W"], "W"))
        if "b" in views:
            x = graph.op("Add", x, graph.const(views["b"], "b"))
    elif kind != "activation":
        raise ExportError(f"the layer {kind!r} has no ONNX form here")
    return _activation(graph, x, layer.activation)


def _activation(graph: _Graph, x: str, activation: Any) -> str:
    name = activation.name
    if name == "identity":
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if name in simple:
        return graph.op(simple[name], x)
    # LeakyRelu and Elu take alpha as a float32 attribute: written out, alpha keeps the graph's precision
    if name == "leaky_relu":
        positive = graph.op("Greater", x, graph.const(0.0))
        return graph.op("Where", positive, x, graph.op("Mul", x, graph.const(activation.alpha)))
    if name == "elu":
        positive = graph.op("Greater", x, graph.const(0.0))
        negative = graph.op("Mul", graph.op("Sub", graph.op("Exp", graph.op("Min", x, graph.const(0.0))),
                                            graph.const(1.0)), graph.const(activation.alpha))
        return graph.op("Where", positive, x, negative)
    if name == "softmax":
        return graph.op("Softmax", x, axis=-1)
    if name == "gelu":  # tanh form: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715 x³)))
        cube = graph.op("Mul", graph.op("Mul", x, x), x)
        inner = graph.op("Add", x, graph.op("Mul", cube, graph.const(0.044715)))
        t = graph.op("Tanh", graph.op("Mul", inner, graph.const(np.sqrt(2.0 / np.pi))))
        return graph.op("Mul", graph.op("Mul", x, graph.const(0.5)), graph.op("Add", t, graph.const(1.0)))
    raise ExportError(f"the activation {name!r} has no ONNX form here")


def _outputs(graph: _Graph, out: str, network: Any) -> None:
    from onnx import TensorProto

    task, k = network.loss.task, network.n_outputs
    if task == "regression":
        scaler = network.target_preprocess
        if scaler is not None and getattr(scaler, "fitted_", False):
            if scaler.kind != "standard":
                raise ExportError(f"the target scaler {scaler.kind!r} has no ONNX form here")
            out = graph.op("Add", graph.op("Mul", out, graph.const(scaler.scale_)), graph.const(scaler.mean_))
        graph.output("variable", out, graph.elem, [None, k])
        return
    if task == "multiclass":
        proba = graph.op("Softmax", out, axis=-1)
    else:
        p = graph.op("Sigmoid", out)
        proba = p if network.classes_ is None else graph.op("Concat", graph.op("Sub", graph.const(1.0), p), p, axis=1)
    width = k if network.classes_ is None or task == "multiclass" else 2
    graph.output("probabilities", proba, graph.elem, [None, width])
    if network.classes_ is None:  # multi-label: one 0/1 per label
        label = graph.op("Cast", graph.op("GreaterOrEqual", proba, graph.const(0.5)), to=TensorProto.INT64)
        graph.output("label", label, TensorProto.INT64, [None, k])
        return
    classes = np.asarray(network.classes_)
    if classes.dtype.kind in "OUS":
        table, elem = graph.const(classes.astype(str).astype(object), "classes", object), TensorProto.STRING
    elif classes.dtype.kind == "f" and not np.all(np.mod(classes, 1) == 0):
        table, elem = graph.const(classes, "classes", np.float64), TensorProto.DOUBLE
    else:
        table, elem = graph.const(classes.astype(np.int64), "classes", np.int64), TensorProto.INT64
    best = graph.op("ArgMax", proba, axis=1, keepdims=0)
    graph.output("label", graph.op("Gather", table, best, axis=0), elem, [None])

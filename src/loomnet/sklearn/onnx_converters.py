"""skl2onnx converters for loomnet's estimators: ``skl2onnx.to_onnx`` converts a Pipeline that ends
in a loomnet ``MLPClassifier`` or ``MLPRegressor``.

``register()`` runs by itself when skl2onnx is imported; then:

    >>> onx = skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32))   # doctest: +SKIP

The estimator's graph is :func:`loomnet.onnx.export`'s, spliced into the converter's container with
its tensors renamed into the operator's scope: input X is the operator's input, ``label`` and
``probabilities`` (or ``variable``) its outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def register() -> bool:
    """Register the converters with skl2onnx; False when skl2onnx is not installed."""
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError:
        return False
    from .classifier import MLPClassifier
    from .regressor import MLPRegressor

    update_registered_converter(MLPClassifier, "LoomnetMLPClassifier", calculate_linear_classifier_output_shapes,
                                _convert, options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(MLPRegressor, "LoomnetMLPRegressor", calculate_linear_regressor_output_shapes,
                                _convert)
    return True


def _convert(scope: Any, operator: Any, container: Any) -> None:
    from onnx import numpy_helper

    from ..onnx import export

    estimator = operator.raw_operator
    input_type = operator.inputs[0].type
    dtype = "float64" if type(input_type).__name__ == "DoubleTensorType" else "float32"
    proto = export(estimator, dtype=dtype)
    graph = proto.graph
    outputs = [o.name for o in graph.output]
    prefix = scope.get_unique_variable_name("loomnet") + "_"
    rename = {"X": operator.inputs[0].full_name}
    if "variable" in outputs:
        rename["variable"] = operator.outputs[0].full_name
    else:
        rename["label"], rename["probabilities"] = operator.outputs[0].full_name, operator.outputs[1].full_name

    def name(tensor: str) -> str:
        return rename.get(tensor) or prefix + tensor

    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == object:  # text class labels
            container.add_initializer(name(init.name), init.data_type, list(array.shape), array.tolist())
        else:
            container.add_initializer(name(init.name), init.data_type, list(array.shape),
                                      np.ascontiguousarray(array).ravel().tolist())
    for node in graph.node:
        attrs = {a.name: _attribute(a) for a in node.attribute}
        container.add_node(node.op_type, [name(i) for i in node.input], [name(o) for o in node.output],
                           name=scope.get_unique_operator_name(prefix + node.op_type), op_version=17, **attrs)


def _attribute(attribute: Any) -> Any:
    from onnx import helper

    return helper.get_attribute_value(attribute)


class _RegisterAfterImport:
    """A meta-path finder that registers the converters right after ``import skl2onnx`` (importing
    skl2onnx costs about 2 s: loomnet does not import it for users who never convert)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "skl2onnx":
            return None
        import importlib.machinery
        import sys

        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            register()

        loader.exec_module = exec_module
        return spec


def register_when_imported() -> None:
    """Register now if skl2onnx is imported already, else as soon as it is (no cost otherwise)."""
    import sys

    if "skl2onnx" in sys.modules:
        register()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())

"""``loomnet export MODEL.loom OUT.onnx``: the model as an ONNX graph, for onnxruntime and friends."""

from __future__ import annotations

import argparse
from typing import Any

from ...io.frames import check_writable
from ...io.modelfile import open_model
from ..main import UsageError

HELP = "write a saved model as ONNX (runs in onnxruntime without loomnet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="the graph's floating type (default float32)")


def run(args: argparse.Namespace, out: Any) -> int:
    try:
        import onnx  # noqa: F401

        from ...onnx import OPSET, ExportError, export
    except ImportError:
        raise UsageError("exporting to ONNX needs the onnx package (pip install 'loomnet[onnx]')") from None
    check_writable(args.output, "the ONNX model")
    loom = open_model(args.model)
    try:
        export(loom.model, args.output, dtype=args.dtype, encoding=loom.extra.get("input"))
    except ExportError as exc:
        raise UsageError(f"cannot export {args.model}: {exc}") from None
    outputs = "variable" if loom.model.loss.task == "regression" else "label, probabilities"
    out.result({"model": args.model, "onnx": args.output, "opset": OPSET, "dtype": args.dtype},
               f"wrote {args.output} (ONNX opset {OPSET}, {args.dtype}; input X, outputs {outputs})")
    return 0

"""``loomnet inspect MODEL``: what a .loom file holds, without running it."""

from __future__ import annotations

import argparse
from typing import Any

from ...io.encoder import TableEncoder
from ...io.modelfile import ModelFileError, open_model, read_header
from . import fmt

HELP = "describe a .loom model file (or a checkpoint)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .loom model file, or a checkpoint written by train --checkpoint-dir")


def run(args: argparse.Namespace, out: Any) -> int:
    try:
        return _describe(args, out)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        # inspect describes untrusted files: a header of the wrong shape is the file's fault, not a bug
        raise ModelFileError(f"{args.model}: malformed header ({type(exc).__name__}: {exc})") from None


def _describe(args: argparse.Namespace, out: Any) -> int:
    header = read_header(args.model)
    if header.get("kind") == "checkpoint":
        return _checkpoint(args.model, header, out)
    loom = open_model(args.model)
    header, model = loom.header, loom.model
    arch = header["architecture"]
    history = header.get("history") or {}
    records = history.get("records") or []
    settings = loom.extra.get("settings", {})
    encoding = loom.extra.get("input") or {}
    summary = {
        "file": args.model,
        "format_version": header["format_version"],
        "loomnet_version": header.get("loomnet_version"),
        "created": header.get("created"),
        "sha256": header["tensors"]["sha256"],
        "n_params": model.n_params,
        "n_features": model.n_features,
        "loss": model.loss.name,
        "optimizer": arch["optimizer"],
        "layers": arch["layers"],
        "preprocess": arch.get("preprocess", {}).get("kind") if isinstance(arch.get("preprocess"), dict)
        else arch.get("preprocess"),
        "labels": header.get("labels"),
        "input_columns": encoding.get("columns"),
        "target": encoding.get("target"),
        "settings": settings,
        "history": {"epochs": len(records), "stop_reason": history.get("stop_reason"),
                    "best_epoch": history.get("best_epoch"), "last": records[-1] if records else None},
    }
    if out.json:
        out.result(summary, "")
        return 0
    lines = [f"{args.model}: loomnet model, format version {summary['format_version']}, "
             f"written by loomnet {summary['loomnet_version']} at {summary['created']}",
             f"sha256 {summary['sha256']} (verified)", "", *_layer_table(model), "",
             f"loss {model.loss.name}, optimizer {arch['optimizer']['name']}, l2 {arch.get('l2', 0)}, "
             f"dtype {arch.get('dtype')}",
             f"preprocessing: {summary['preprocess']} scaling of {model.n_features} features"]
    if encoding.get("columns"):
        encoder = TableEncoder.from_dict(encoding)
        impute = encoding.get("impute")
        lines.append(f"target: {encoding.get('target')!r} ({encoding.get('task')}); missing values: "
                     + (f"imputed ({impute})" if impute not in (None, "none") else "refused"))
        lines.append(f"input columns ({len(encoding['columns'])}, {len(encoder.feature_names)} encoded features):")
        lines += [f"  {line}" for line in encoder.describe_columns()]
    if header.get("labels") is not None:
        labels = header["labels"]
        more = " ..." if len(labels) > 20 else ""
        lines.append(f"labels ({len(labels)}): {', '.join(map(str, labels[:20]))}{more}")
    if records:
        last = records[-1]
        metrics = ", ".join(f"{k} {fmt(v)}" for k, v in last.items() if k == "loss" or k.startswith("val_"))
        lines.append(f"training: {len(records)} epochs ({history.get('stop_reason')}), last epoch: {metrics}")
    if settings:
        keys = ("data", "hidden", "activation", "optimizer", "lr", "batch_size", "epochs", "seed")
        lines.append("settings: " + ", ".join(f"{k}={settings[k]}" for k in keys if settings.get(k) is not None))
    out.result(summary, "\n".join(lines))
    return 0


def _layer_table(model: Any) -> list[str]:
    """One line per layer: kind, width, activation or rate, parameter count."""
    lines = [f"  {'layer':<10}{'units':>8}  {'activation':<12}{'params':>10}"]
    for layer, views in zip(model.layers, model.layer_params, strict=True):
        config = layer.get_config()
        activation = config.get("activation", {}).get("name", "") if "activation" in config else ""
        detail = f"rate {config['rate']}" if "rate" in config else activation
        count = sum(v.size for v in views.values())
        lines.append(f"  {config['kind']:<10}{layer.n_out or '':>8}  {detail:<12}{count:>10,}")
    lines.append(f"  {'total':<32}{model.n_params:>10,}")
    return lines


def _checkpoint(path: str, header: dict[str, Any], out: Any) -> int:
    """Where a checkpointed run stands and the options it was started with."""
    trainer, settings = header["trainer"], header.get("settings", {})
    records = (trainer.get("history") or {}).get("records") or []
    summary = {"file": path, "kind": "checkpoint", "format_version": header["format_version"],
               "sha256": header["tensors"]["sha256"], "epoch": trainer["epoch"], "step": trainer["step"],
               "optimizer_iterations": header["optimizer"].get("iterations"), "settings": settings,
               "last_epoch": records[-1] if records else None}
    position = f"resumes at epoch {trainer['epoch'] + 1}, step {trainer['step']}"
    if settings.get("epochs") and trainer["epoch"] >= settings["epochs"]:
        position = f"the run finished all {settings['epochs']} epochs"
    lines = [f"{path}: loomnet checkpoint, format version {header['format_version']}, {position} "
             f"({header['optimizer'].get('iterations')} optimiser steps taken)",
             f"sha256 {summary['sha256']} (verified)"]
    if records:
        last = records[-1]
        metrics = ", ".join(f"{k} {fmt(v)}" for k, v in last.items() if k == "loss" or k.startswith("val_"))
        lines.append(f"last finished epoch {last['epoch']}: {metrics}")
    if settings:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()
                                               if v is not None and k != "data_sha256"))
    out.result(summary, "\n".join(lines))
    return 0

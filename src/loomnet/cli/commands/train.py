"""``loomnet train``: read data, build a network from options, train with progress and checkpoints, save.

Other modules can extend training without editing this one: ``DISTRIBUTED_BACKENDS`` maps a
``--distributed`` value to "module:function", a factory ``(model, X, y, **trainer_kwargs) ->
trainer`` whose result has ``run()``, ``stop_requested`` and ``state_dict()/load_state_dict()``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...io.atomic import is_special_file
from ...io.tables import IMPUTE_CHOICES, DataError, check_writable, open_training_table, read_training_table
from ...training import Callback, EarlyStopping, Trainer
from ..main import UsageError
from . import non_negative_float, positive_int
from .training_hooks import (
    Checkpointer,
    ProgressBar,
    TrainingMetric,
    format_epoch,
    resume_hint,
    stop_on_signals,
    tensorboard_logger,
)

HELP = "train a network and save it as a .loom file"
DISTRIBUTED_BACKENDS: dict[str, str] = {"mpi": "loomnet.cli.distributed:make_trainer"}
# Options that may change between a run and its --resume; all others must match the checkpoint.
_RESUMABLE_CHANGES = {"epochs"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", default="builtin:digits",
                   help="CSV/.npy/.npz/.parquet file or builtin:NAME (default: builtin:digits)")
    p.add_argument("--target", help="target column (CSV: required; .npy: default the last column)")
    p.add_argument("--task", choices=["classify", "regress"], help="default: guessed from the target column")
    p.add_argument("--impute", choices=IMPUTE_CHOICES, default="median",
                   help="missing feature values: median or mean of the training rows (numbers; a missing-indicator "
                        "column is added where a column has gaps; missing categories get a column of their own), "
                        "or none to refuse them (default median)")
    p.add_argument("--recipe", choices=["tabular", "none"], default="tabular",
                   help="tabular (default): choose the network, optimiser, batch size, epochs, dropout, early "
                        "stopping and scaling from the data's rows, columns and task (loomnet.recipes; any option "
                        "given here overrides its choice); none: the fixed defaults shown below")
    p.add_argument("--hidden", type=_hidden_sizes, help="hidden layer widths (recipe none: 128,64)")
    p.add_argument("--activation", help="hidden activation (recipe none: relu)")
    p.add_argument("--dropout", type=_fraction, help="dropout rate after each hidden layer (recipe none: 0)")
    p.add_argument("--l2", type=non_negative_float, default=0.0, help="L2 penalty on the weights")
    p.add_argument("--loss", help="default: cross_entropy (classify) or mse (regress)")
    p.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad (recipe: AdamW with a cosine-decaying "
                   "learning rate; recipe none: adam)")
    p.add_argument("--lr", type=_positive_float, help="learning rate (default: the optimiser's)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (recipe none: 100)")
    p.add_argument("--batch-size", type=_batch_size, help="samples per step, or 'full' (recipe none: 64)")
    p.add_argument("--workers", type=_workers, help="threads computing each step: a number or 'auto' "
                   "(default: the plain single-thread loop)")
    p.add_argument("--mode", choices=["sync", "hogwild", "locked"],
                   help="how worker threads combine gradients: sync (same bits for any --workers), hogwild "
                        "(asynchronous, lock-free) or locked (asynchronous, updates one at a time)")
    p.add_argument("--micro-batches", type=positive_int, metavar="N",
                   help="slices of each batch in --mode sync (default: batch size // 64, from 1 to 8, whatever "
                        "the machine: the same parameters for any --workers); with --distributed, the data shards")
    p.add_argument("--distributed", choices=sorted(DISTRIBUTED_BACKENDS), help="train across processes")
    p.add_argument("--deterministic", action="store_true", help="with --distributed: add per-shard gradients in a "
                   "fixed order (bit-identical for any number of ranks)")
    p.add_argument("--val-fraction", type=_fraction, help="held out for validation (recipe none: 0.1)")
    p.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE", help="stop after PATIENCE epochs "
                   "without improvement, restoring the best epoch (recipe none: off)")
    p.add_argument("--loss-threshold", type=float, help="stop once the training loss is at most this")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="training precision")
    p.add_argument("--seed", type=int, default=0, help="seed of every random stream")
    p.add_argument("--out", "-o", default="model.loom", help="model file to write (default model.loom)")
    p.add_argument("--plot", help="loss/metric PNG (default: next to the model, NAME.history.png)")
    p.add_argument("--log-csv", metavar="PATH", help="append each epoch's metrics to this CSV file")
    p.add_argument("--log-tensorboard", metavar="DIR",
                   help="write each epoch's metrics as TensorBoard scalars into DIR (needs tensorboardX)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    p.add_argument("--checkpoint-dir", help="write checkpoints here (every N epochs and on Ctrl-C)")
    p.add_argument("--checkpoint-every", type=positive_int, default=1, metavar="N", help="epochs between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")


def run(args: argparse.Namespace, out: Any) -> int:
    from ...io.checkpoint import checkpoint_path, read_checkpoint, restore_checkpoint, save_checkpoint
    from ...io.modelfile import save_model

    check_writable(args.out, "the model")
    if args.distributed:
        from ...distributed.comm import world_rank

        out.quiet = out.quiet or world_rank() != 0  # rank 0 alone prints progress and writes files
    # A model streamed into /dev/null or a FIFO gets no plot beside it unless --plot names one.
    no_plot = args.no_plot or (not args.plot and is_special_file(args.out))
    plot_path = None if no_plot else Path(args.plot or _default_plot(args.out))
    _check_outputs(args, plot_path)
    if args.distributed:  # each rank keeps only the encoded rows of its shard
        encoder, X, y = open_training_table(args.data, args.target, args.impute, args.task)
    else:
        encoder, X, y, found = read_training_table(args.data, args.target, args.impute, args.task)
        if found.dropped_rows:
            out.progress(f"note: {found.dropped_rows} of {found.n_rows} rows have no target value and were left out")
    target = encoder.target
    dropped = [c["name"] for c in encoder.columns if c["kind"] == "dropped"]
    if dropped:
        out.progress(f"note: column(s) {', '.join(map(repr, dropped))} dropped (identifier or free text; "
                     "loomnet inspect shows why)")
    recipe = _apply_recipe(args, X, encoder.task, y, encoder.categorical_blocks())
    model = _build_model(args, encoder.task, y, recipe)
    if recipe is not None:
        given = getattr(args, "recipe_overrides", [])
        out.progress(recipe.describe() + (f" (given: {', '.join(given)})" if given else ""))
    model.feature_names = encoder.feature_names
    out.progress(f"data: {args.data}: {X.shape[0]} rows, {X.shape[1]} features, target {target!r} "
                 f"({_describe_task(encoder.task, y)})")

    settings = _settings(args, target, encoder.task, X, y)
    ckpt = checkpoint_path(args.checkpoint_dir) if args.checkpoint_dir else None
    callbacks: list[Callback] = [TrainingMetric(), ProgressBar(out, args.epochs)]
    if args.log_csv:
        from ...training import CSVLogger

        check_writable(args.log_csv, "the metrics log")
        callbacks.append(CSVLogger(args.log_csv))
    if args.log_tensorboard:
        callbacks.append(tensorboard_logger(args.log_tensorboard))
    checkpointer = None
    if ckpt is not None:
        checkpointer = Checkpointer(ckpt, args.checkpoint_every, settings, save_checkpoint)
        callbacks.append(checkpointer)
    trainer = _make_trainer(args, out, model, X, y, callbacks)
    if args.resume:
        header, tensors = read_checkpoint(ckpt)
        _check_resume(header.get("settings", {}), settings, ckpt)
        restore_checkpoint(trainer, header, tensors)
        if trainer.history.stop_reason in ("early_stopping", "loss_threshold", "callback"):
            trainer.epochs = trainer.epoch  # that run had already finished
        out.progress(f"resuming from {ckpt}: epoch {trainer.epoch + 1}, step {trainer.step}")

    start = time.perf_counter()
    with stop_on_signals(trainer):
        history = trainer.run()
    elapsed = time.perf_counter() - start
    if not trainer.is_root:
        return 130 if trainer.stop_requested else 0
    if trainer.stop_requested:
        where = f"at epoch {trainer.epoch + 1}, step {trainer.step}" if trainer.step else \
            f"during epoch {trainer.epoch + 1}"
        print(f"error: interrupted {where}{resume_hint(checkpointer, args.checkpoint_dir)}", file=sys.stderr)
        return 130

    extra = {"input": encoder.to_dict(), "settings": settings,
             "recipe": None if recipe is None else recipe.to_dict()}
    header = save_model(model, args.out, extra=extra)
    if plot_path is not None:
        from ..plots import plot_history

        plot_history(history.records, plot_path, title=f"{Path(args.out).name}: {args.data}",
                     best_epoch=history.best_epoch, overfit_epoch=history.overfit_epoch)
    result, text = _summary(args, history, model, header, plot_path, elapsed)
    out.result(result, text)
    return 0


def _summary(args: argparse.Namespace, history: Any, model: Any, header: dict[str, Any], plot_path: Path | None,
             elapsed: float) -> tuple[dict[str, Any], str]:
    """The result of a run: as JSON data and as the lines printed."""
    last = history.records[-1] if history.records else {}
    result = {"model": str(args.out), "plot": None if plot_path is None else str(plot_path),
              "epochs": len(history), "stop_reason": history.stop_reason, "best_epoch": history.best_epoch,
              "overfit_epoch": history.overfit_epoch, "seconds": round(elapsed, 3), "final": last,
              "n_params": model.n_params,
              "sha256": header["tensors"]["sha256"]}
    text = [f"trained {len(history)} epochs in {elapsed:.1f} s ({history.stop_reason})"]
    best = history.best_epoch
    if best is not None and 1 <= best <= len(history):  # early stopping restored this epoch's weights
        text.append(f"best epoch {best} (weights restored): "
                    + format_epoch(history.records[best - 1], len(history)).split("  ", 1)[1])
    elif last:
        text.append("final: " + format_epoch(last, len(history)).split("  ", 1)[1])
    text.append(f"saved {args.out} ({model.n_params:,} parameters, sha256 {header['tensors']['sha256'][:12]}…)")
    if plot_path is not None:
        text.append(f"plot: {plot_path}")
    return result, "\n".join(text)


# ----------------------------------------------------------------- building
def _apply_recipe(args: argparse.Namespace, X: Any, task: str, y: np.ndarray, blocks: Any = ()) -> Any:
    """Fill the options the user left out, from the tabular recipe (or the fixed defaults); the recipe or None."""
    explicit = {name: getattr(args, name) for name in ("hidden", "activation", "dropout", "optimizer", "epochs",
                                                       "batch_size", "val_fraction", "early_stopping")}
    if args.recipe == "none":
        defaults = {"hidden": (128, 64), "activation": "relu", "dropout": 0.0, "optimizer": "adam", "epochs": 100,
                    "batch_size": 64, "val_fraction": 0.1, "early_stopping": None}
        recipe = None
    else:
        from ...recipes import tabular_recipe

        classes = len(np.unique(y)) if task == "classify" else None
        recipe = tabular_recipe(X.shape[0], X.shape[1], task, classes, blocks)
        defaults = {"hidden": recipe.hidden, "activation": recipe.activation, "dropout": recipe.dropout,
                    "optimizer": None, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
                    "val_fraction": recipe.val_fraction, "early_stopping": recipe.patience}
    for name, value in explicit.items():
        if value is None:
            setattr(args, name, defaults[name])
    if recipe is not None:  # the recipe as trained: the options given replace its choices
        from dataclasses import replace

        recipe = replace(recipe, hidden=tuple(args.hidden), activation=args.activation, dropout=args.dropout,
                         epochs=args.epochs, batch_size=args.batch_size, val_fraction=args.val_fraction,
                         patience=args.early_stopping if args.early_stopping is not None else recipe.patience,
                         learning_rate=args.lr or recipe.learning_rate)
        given = [f"--{name.replace('_', '-')}" for name, value in explicit.items() if value is not None]
        given += ["--lr"] if args.lr else []
        args.recipe_overrides = given
    return recipe


def _build_model(args: argparse.Namespace, task: str, y: np.ndarray, recipe: Any = None) -> Any:
    from ...engine.layers import Dense, Dropout
    from ...engine.losses import get_loss
    from ...engine.network import Sequential
    from ...engine.optimizers import get_optimizer

    loss = get_loss(args.loss or ("mse" if task == "regress" else "cross_entropy"))
    if (loss.task == "regression") != (task == "regress"):
        kind = "regression" if loss.task == "regression" else "classification"
        raise UsageError(f"--loss {loss.name} is a {kind} loss but the task is {task}; pick a matching --loss "
                         "or --task")
    if task == "regress":
        n_out = 1
    else:
        classes = np.unique(y)
        if len(classes) < 2:
            raise UsageError(f"the target column has a single class ({classes.tolist()[0]!r}); classification needs "
                             "at least 2")
        if loss.task == "binary" and len(classes) != 2:
            raise UsageError(f"--loss {loss.name} needs exactly 2 classes, the target has {len(classes)}")
        n_out = 1 if loss.task == "binary" else len(classes)
    from ...engine.embedding import CategoricalEmbedding

    layers: list[Any] = [CategoricalEmbedding(recipe.embeddings)] if recipe is not None and recipe.embeddings else []
    for width in args.hidden:
        layers.append(Dense(width, args.activation))
        if args.dropout > 0:
            layers.append(Dropout(args.dropout))
    layers.append(Dense(n_out))
    if args.optimizer is None:  # the recipe's AdamW, its learning rate decaying over the epochs
        from ...engine.optimizers import AdamW
        from ...engine.schedules import CosineDecay

        optimizer = AdamW(CosineDecay(args.lr or recipe.learning_rate, epochs=args.epochs),
                          weight_decay=recipe.weight_decay)
    else:
        optimizer = get_optimizer(args.optimizer, args.lr)
    return Sequential(layers, loss=loss, optimizer=optimizer, l2=args.l2,
                      # robust scaling needs quantiles of all rows: ranks fit standard scaling together
                      preprocess=recipe.preprocess if recipe is not None and not args.distributed else "standard",
                      target_preprocess="standard" if task == "regress" else None, dtype=args.dtype, seed=args.seed)


def _make_trainer(args: argparse.Namespace, out: Any, model: Any, X: np.ndarray, y: np.ndarray,
                  callbacks: list[Callback]) -> Any:
    val_fraction = args.val_fraction
    if val_fraction and round(len(X) * val_fraction) < 1:
        out.progress(f"note: {len(X)} rows are too few to hold out {val_fraction:g} for validation; "
                     "training without validation")
        val_fraction = 0.0
    early = None
    if args.early_stopping is not None:
        early = EarlyStopping(patience=args.early_stopping, monitor="val_loss" if val_fraction else "loss")
    kwargs: dict[str, Any] = dict(
        epochs=args.epochs, batch_size=args.batch_size, validation_split=val_fraction,
        early_stopping=early, loss_threshold=args.loss_threshold, callbacks=callbacks, seed=args.seed,
    )
    factory: Any = Trainer
    if args.distributed:
        kwargs["deterministic"] = args.deterministic
        module, _, name = DISTRIBUTED_BACKENDS[args.distributed].partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"--distributed {args.distributed} is not available in this installation ({exc})") \
                from None
    accepted = inspect.signature(factory).parameters
    for option in ("workers", "mode", "micro_batches"):
        value = getattr(args, option)
        if value is None:
            continue
        if option in accepted or any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            kwargs[option] = value
        else:
            out.warn(f"--{option.replace('_', '-')} is ignored: this trainer has no {option!r} option")
    return factory(model, X, y, **kwargs)


def _settings(args: argparse.Namespace, target: str, task: str, X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The options and data a run depends on: stored in checkpoints and model files."""
    digest = hashlib.sha256()
    if isinstance(X, np.ndarray):
        digest.update(np.ascontiguousarray(X).tobytes())
    else:
        X.update_digest(digest)
    digest.update(np.asarray(y).astype(str).tobytes() if y.dtype.kind in "OUS" else np.ascontiguousarray(y).tobytes())
    keys = ("data", "impute", "recipe", "hidden", "activation", "dropout", "l2", "loss", "optimizer", "lr", "epochs",
            "batch_size", "workers", "mode", "micro_batches", "distributed", "deterministic", "val_fraction",
            "early_stopping", "loss_threshold", "dtype", "seed")
    settings = {k: getattr(args, k) for k in keys}
    settings["hidden"] = list(args.hidden)
    settings.update(target=target, task=task, data_sha256=digest.hexdigest())
    return json.loads(json.dumps(settings))


def _check_resume(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    differ = [k for k in sorted(set(saved) | set(current))
              if k not in _RESUMABLE_CHANGES and saved.get(k) != current.get(k)]
    if differ:
        detail = ", ".join(f"{k} was {saved.get(k)!r}, now {current.get(k)!r}" for k in differ[:3])
        raise UsageError(f"cannot resume from {path}: the run used different options or data ({detail})")


def _check_outputs(args: argparse.Namespace, plot_path: Path | None) -> None:
    if args.mode and args.workers is None:
        raise UsageError(f"--mode {args.mode} needs --workers (a number or 'auto')")
    if args.micro_batches and args.workers is None and not args.distributed:
        raise UsageError("--micro-batches splits each batch over worker threads: give --workers too")
    if plot_path is not None:
        check_writable(plot_path, "the plot")
    if args.log_tensorboard:
        tensorboard_logger(args.log_tensorboard)  # tensorboardX present and the folder writable, before any work
    if args.resume and not args.checkpoint_dir:
        raise UsageError("--resume needs --checkpoint-dir (where the checkpoint was written)")
    if args.checkpoint_dir:
        directory = Path(args.checkpoint_dir)
        if args.resume and not (directory / "checkpoint.loom").exists():
            raise UsageError(f"--resume: no checkpoint in {directory}")
        if not directory.exists():
            if not directory.parent.is_dir():
                raise DataError(f"cannot create checkpoint directory {directory}: {directory.parent} does not exist")
            directory.mkdir(exist_ok=True)  # MPI ranks all get here: another may have made it first
        check_writable(directory / "checkpoint.loom", "checkpoints to")


def _default_plot(model_path: str) -> Path:
    path = Path(model_path)
    return path.with_name(path.stem + ".history.png")


def _describe_task(task: str, y: np.ndarray) -> str:
    if task == "regress":
        return "regression"
    return f"classification, {len(np.unique(y))} classes"


# ----------------------------------------------------------------- option types
def _hidden_sizes(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths like 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


def _fraction(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _batch_size(text: str) -> int | str:
    return "full" if text == "full" else positive_int(text)


def _workers(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)

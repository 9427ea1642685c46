"""The tabular recipe: an architecture and its regularisation chosen from the data's shape and task.

What it takes from the papers that made MLPs competitive on tables (RealMLP, Holzmüller et al.
2024; Gorishniy et al. 2021): robust scaling with smooth clipping of the inputs, standardised
regression targets, AdamW with weight decay and a cosine-decaying learning rate, dropout, and
early stopping on a held-out split that restores the best epoch. Width, depth, batch size and
the epoch budget follow the number of rows, so small tables get a small, strongly regularised
network and large ones a wider, deeper one.

    >>> recipe = tabular_recipe(n_rows=2000, n_features=12, task="classify", n_classes=3)
    >>> model = recipe.build_model(n_outputs=3)            # doctest: +SKIP
    >>> model.fit(X, y, **recipe.fit_options())            # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .engine.embedding import CategoricalEmbedding
from .engine.layers import Dense, Dropout
from .engine.network import Sequential
from .engine.optimizers import AdamW
from .engine.schedules import CosineDecay
from .training import EarlyStopping

STEPS_BUDGET = 6000  # optimiser steps the epoch budget aims at (early stopping usually ends sooner)
EMBED_MIN_WIDTH = 8  # categorical columns with at least this many one-hot columns get an embedding

__all__ = ["Recipe", "tabular_recipe"]


@dataclass(frozen=True)
class Recipe:
    """A network and how to train it; ``describe()`` says it in one line, ``to_dict()`` stores it.

    Made by :func:`tabular_recipe` from the data's shape; ``loomnet train`` uses it by default
    and stores ``to_dict()`` in the model file.

    Parameters
    ----------
    hidden : tuple of int
        Widths of the hidden layers.
    activation : str
        Their activation.
    dropout : float
        Dropout after each hidden layer (0: none).
    learning_rate : float
        AdamW's peak learning rate, cosine-decayed over the epochs.
    weight_decay : float
        AdamW's decoupled weight decay.
    batch_size : int
        Rows per step.
    epochs : int
        The epoch budget (early stopping usually ends sooner).
    patience : int
        Epochs without a better validation loss before stopping (the best epoch is restored).
    val_fraction : float
        Fraction of the rows held out for early stopping.
    preprocess : str
        The input scaler (``"robust"``: robust scaling with smooth clipping).
    task : {'classify', 'regress'}
        Regression also standardises the target.
    embeddings : tuple of (int, int)
        (first column, width) of the one-hot blocks a :class:`~loomnet.CategoricalEmbedding`
        embeds before the first layer.

    Examples
    --------
    >>> import loomnet as ln
    >>> from loomnet.recipes import Recipe
    >>> recipe = Recipe(hidden=(32,), activation="relu", dropout=0.1, learning_rate=0.003, weight_decay=0.01,
    ...                 batch_size=32, epochs=20, patience=5, val_fraction=0.2)
    >>> model = recipe.build_model(n_outputs=3)
    >>> iris = ln.datasets.load("iris")
    >>> history = model.fit(iris.X, iris.y, **recipe.fit_options())
    >>> len(history.records) <= 20, recipe.to_dict()["hidden"]
    (True, [32])
    """

    hidden: tuple[int, ...]
    activation: str
    dropout: float
    learning_rate: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int
    val_fraction: float
    preprocess: str = "robust"
    task: str = "classify"
    embeddings: tuple[tuple[int, int], ...] = ()  # (start, width) of the one-hot blocks embedded first

    def build_model(self, n_outputs: int, *, loss: str | None = None, seed: int = 0, dtype: str = "float32"
                    ) -> Sequential:
        """The network of this recipe with ``n_outputs`` output units."""
        layers: list[Any] = [CategoricalEmbedding(self.embeddings)] if self.embeddings else []
        for width in self.hidden:
            layers.append(Dense(width, self.activation))
            if self.dropout > 0:
                layers.append(Dropout(self.dropout))
        layers.append(Dense(n_outputs))
        regress = self.task == "regress"
        optimizer = AdamW(CosineDecay(self.learning_rate, epochs=self.epochs), weight_decay=self.weight_decay)
        return Sequential(layers, loss=loss or ("mse" if regress else "cross_entropy"), optimizer=optimizer,
                          preprocess=self.preprocess, target_preprocess="standard" if regress else None,
                          dtype=dtype, seed=seed)

    def fit_options(self) -> dict[str, Any]:
        """Options for ``Sequential.fit`` / ``Trainer``: batch size, epoch budget, validation, early stopping."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "validation_split": self.val_fraction,
                "early_stopping": EarlyStopping(patience=self.patience, restore_best_weights=True)}

    def describe(self) -> str:
        """The recipe in one sentence (``loomnet train`` prints it)."""
        hidden = "-".join(map(str, self.hidden))
        layers = "layer" if len(self.hidden) == 1 else "layers"
        return (f"recipe: {len(self.hidden)} hidden {layers} {hidden} ({self.activation}), dropout {self.dropout:g}, "
                f"AdamW lr {self.learning_rate:g} cosine-decayed over {self.epochs} epochs, weight decay "
                f"{self.weight_decay:g}, batch {self.batch_size}, early stopping after {self.patience} epochs "
                f"without a better validation loss ({self.val_fraction:.0%} held out), {self.preprocess} scaling"
                + (f", embeddings of {len(self.embeddings)} categorical column(s)" if self.embeddings else ""))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tuples as lists)."""
        return {**asdict(self), "hidden": list(self.hidden), "embeddings": [list(b) for b in self.embeddings]}


def tabular_recipe(n_rows: int, n_features: int, task: str, n_classes: int | None = None,
                   categorical_blocks: Any = ()) -> Recipe:
    """The recipe for a table of ``n_rows`` rows and ``n_features`` encoded features.

    ``task`` is 'classify' or 'regress'; ``n_classes`` is informational for classification.
    ``categorical_blocks``: (start, width) of the one-hot blocks of the table's categorical columns
    (:meth:`loomnet.io.encoder.TableEncoder.categorical_blocks`); those of at least
    ``EMBED_MIN_WIDTH`` columns are embedded first (:class:`~loomnet.CategoricalEmbedding`).

    Parameters
    ----------
    n_rows, n_features : int
        The table's training rows and encoded features.
    task : {'classify', 'regress'}
        The task.
    n_classes : int, optional
        Number of classes (informational).
    categorical_blocks : sequence of (start, width)
        The one-hot blocks of the categorical columns.

    Returns
    -------
    Recipe
        ``build_model(n_outputs)``, ``fit_options()``, ``describe()``, ``to_dict()``.

    Raises
    ------
    ValueError
        If the task is unknown or the table has no rows or features.

    Examples
    --------
    >>> from loomnet.recipes import tabular_recipe
    >>> recipe = tabular_recipe(n_rows=5000, n_features=20, task="classify", n_classes=3)
    >>> recipe.hidden, recipe.batch_size
    ((256, 256), 64)
    """
    if task not in ("classify", "regress"):
        raise ValueError(f"task must be 'classify' or 'regress', got {task!r}")
    if n_rows < 1 or n_features < 1:
        raise ValueError(f"a table needs rows and features, got {n_rows} rows and {n_features} features")
    if n_rows < 1000:
        hidden, dropout, batch = (128, 128), 0.2, 32
    elif n_rows < 10_000:
        hidden, dropout, batch = (256, 256), 0.15, 64
    else:
        hidden, dropout, batch = (256, 256, 256), 0.1, 128
    val_fraction = 0.2 if n_rows < 2000 else 0.1
    steps_per_epoch = max(1, math.ceil(n_rows * (1 - val_fraction) / batch))
    epochs = int(min(400, max(40, STEPS_BUDGET // steps_per_epoch)))
    return Recipe(hidden=hidden, activation="relu", dropout=dropout, learning_rate=2e-3, weight_decay=0.02,
                  batch_size=batch, epochs=epochs, patience=max(12, epochs // 10), val_fraction=val_fraction,
                  task=task, embeddings=tuple((int(s), int(w)) for s, w in categorical_blocks if w >= EMBED_MIN_WIDTH))

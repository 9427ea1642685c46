"""PNG figures for :mod:`loomnet.explain`: a ranked bar chart and attribution heat maps for images."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..explain import Importance
from .plots import _figure, _save


def plot_importance(importance: Importance, path: str | os.PathLike, *, top: int = 20, title: str = "") -> None:
    """Horizontal bars of the ``top`` features, most important at the top, with ± std whiskers."""
    order = importance.ranking()[:top][::-1]
    names = [importance.feature_names[j] for j in order]
    figure = _figure(7, 1.2 + 0.28 * len(order))
    ax = figure.subplots()
    ax.barh(range(len(order)), importance.mean[order], xerr=importance.std[order], color="tab:blue",
            ecolor="0.4", capsize=2)
    ax.set_yticks(range(len(order)), names, fontsize=8)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    what = {"permutation": f"drop in {importance.metric} when shuffled"}.get(importance.method, "mean |attribution|")
    ax.set(xlabel=what, title=title or f"feature importance ({importance.method})")
    figure.tight_layout()
    _save(figure, path)


def plot_attribution_images(
    X: NDArray[np.floating],
    attributions: NDArray[np.floating],
    path: str | os.PathLike,
    *,
    shape: tuple[int, int] = (8, 8),
    labels: Sequence[Any] | None = None,
    n_samples: int = 6,
    title: str = "",
) -> None:
    """Each of the first ``n_samples`` images above its attribution map (red: pushes the output up,
    blue: down; one symmetric colour scale for all)."""
    n = min(n_samples, X.shape[0])
    limit = float(np.abs(attributions[:n]).max(initial=0.0)) or 1.0
    figure = _figure(1.6 * n + 0.6, 3.6)
    axes = figure.subplots(2, n, squeeze=False)
    for i in range(n):
        image = X[i].reshape(shape)
        heat = attributions[i].reshape(shape)
        axes[0, i].imshow(image, cmap="gray_r")
        shown = axes[1, i].imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[0, i].set_title(f"{labels[i]}" if labels is not None else f"sample {i}", fontsize=9)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("attribution", fontsize=9)
    figure.colorbar(shown, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01)
    if title:
        figure.suptitle(title, fontsize=10)
    _save(figure, path)


def image_shape(feature_names: Sequence[str]) -> tuple[int, int] | None:
    """(rows, cols) when the features are the pixels ``pixel_R_C`` of an image in row-major order
    (as in the bundled 8×8 digits), else None."""
    cells = [re.fullmatch(r"pixel_(\d+)_(\d+)", str(name)) for name in feature_names]
    if not cells or not all(cells):
        return None
    rows, cols = max(int(c[1]) for c in cells) + 1, max(int(c[2]) for c in cells) + 1
    expected = [(r, c) for r in range(rows) for c in range(cols)]
    return (rows, cols) if [(int(c[1]), int(c[2])) for c in cells] == expected else None

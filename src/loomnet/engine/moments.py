"""Column means and standard deviations in float64, a block of rows at a time (Chan et al.'s merge)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def column_moments(
    X: NDArray, rows: NDArray[np.int64] | None = None, chunk: int = 512
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Column means and standard deviations of X (or of X[rows]) in float64, a block of rows at a time.

    Blocks are merged with Chan et al.'s update, so the extra memory is one float64 block, not a
    float64 copy of X (a model search fits one scaler per fold on rows of one shared matrix).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The data, any float type.
    rows : ndarray of int, optional
        Only these rows (a fold of a shared matrix); all rows by default.
    chunk : int, default 512
        Rows per block.

    Returns
    -------
    mean, std : ndarray of float64, shape (n_features,)
        The population moments (ddof 0), as ``X.mean(axis=0)`` and ``X.std(axis=0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from loomnet.engine.preprocessing import column_moments
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> mean, std = column_moments(X, chunk=2)
    >>> np.allclose(mean, X.mean(axis=0)) and np.allclose(std, X.std(axis=0))
    True
    """
    n_rows = X.shape[0] if rows is None else len(rows)
    count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, n_rows, chunk):
        part = X[start:start + chunk] if rows is None else X[rows[start:start + chunk]]
        block = part.astype(np.float64)  # a copy: centred and squared in place below
        n_b, mean_b = len(block), block.mean(axis=0)
        block -= mean_b
        np.square(block, out=block)
        delta, total = mean_b - mean, count + n_b
        mean = mean + delta * (n_b / total)
        m2 = m2 + block.sum(axis=0) + delta**2 * (count * n_b / total)
        count = total
    return mean, np.sqrt(m2 / max(count, 1))

"""Model search: grid and random search, k-fold cross-validation and bagging, every job trained
through the one training loop on rows of one shared copy of the data.

Backends by name (``backend=``): ``"threads"`` and ``"processes"`` (:mod:`.backends`), ``"mpi"``
(:mod:`.mpi`).
"""

from .ensemble import BaggedEnsemble, bagging
from .jobs import SearchResult, cross_validate, grid_search, random_search

__all__ = ["BaggedEnsemble", "SearchResult", "bagging", "cross_validate", "grid_search", "random_search"]

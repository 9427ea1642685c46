"""Training: one step, one epoch loop, the data objects they take, callbacks and stopping rules.

- :mod:`.step`: the training step, defined once (gather → forward → loss → backward → reduce → update);
- :mod:`.loop`: :class:`Trainer`, the epoch loop that drives it;
- :mod:`.runner`: the protocol of the runners that decide where steps run (serial here; threads in
  :mod:`loomnet.parallel`, MPI in :mod:`loomnet.distributed`);
- :mod:`.data`: which rows, in what order, how batches are gathered, per-batch L2;
- :mod:`.streams`: every random stream, from (seed, epoch, step, row position).
"""

from ..engine.hooks import TRAINING
from .callbacks import Callback, CSVLogger, OverfittingMonitor, OverfittingWarning
from .data import BatchL2, TrainingData
from .history import History, TrainingDivergedError
from .loop import Trainer
from .runner import RUNNERS, SerialRunner
from .step import Batch, Lane, Step
from .stopping import EarlyStopping
from .tensorboard import TensorBoardLogger


def fit(model, X, y, **kwargs) -> History:
    """Train ``model`` on (X, y) and return its History; keyword options as for :class:`Trainer`.

    The same as ``model.fit(X, y, **kwargs)`` and ``Trainer(model, X, y, **kwargs).run()``.

    Parameters
    ----------
    model : Sequential
        The network to train (built on the first call if needed).
    X, y : array-like
        Inputs and targets.
    **kwargs
        :class:`Trainer`'s options: ``epochs``, ``batch_size``, ``validation_split``,
        ``early_stopping``, ``callbacks``, ``workers``, ...

    Returns
    -------
    History

    Raises
    ------
    ValueError, TypeError
        Bad data or options, naming the problem.
    TrainingDivergedError
        The loss became NaN or infinite.

    Examples
    --------
    >>> import loomnet as ln
    >>> iris = ln.datasets.load("iris")
    >>> len(ln.fit(ln.Sequential([ln.Dense(3)], seed=0), iris.X, iris.y, epochs=3)["loss"])
    3
    """
    return Trainer(model, X, y, **kwargs).run()


TRAINING.fit = fit


def _document_fit() -> None:
    """``Sequential.fit`` forwards its options to :class:`Trainer`: show them in its signature and docstring."""
    import inspect

    from ..engine.network import Sequential

    internal = {"model", "data", "validation", "penalty", "runner"}
    options = [p for name, p in inspect.signature(Trainer).parameters.items() if name not in internal]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    Sequential.fit.__signature__ = inspect.Signature([self_param, *options], return_annotation="History")
    trainer_doc = inspect.getdoc(Trainer) or ""
    parameters = trainer_doc[trainer_doc.find("Parameters"):].replace("model : Sequential\n", "")
    Sequential.fit.__doc__ = ("Train on (X, y) and return the :class:`History` (the options are "
                              ":class:`Trainer`'s).\n\n" + parameters)


_document_fit()

__all__ = [
    "RUNNERS", "Batch", "BatchL2", "CSVLogger", "Callback", "EarlyStopping", "History", "Lane", "OverfittingMonitor",
    "OverfittingWarning", "SerialRunner", "Step", "TensorBoardLogger", "Trainer", "TrainingData",
    "TrainingDivergedError", "fit",
]

"""Training: one step, one epoch loop, the data objects they take, callbacks and stopping rules.

- :mod:`.step`: the training step, defined once (gather → forward → loss → backward → reduce → update);
- :mod:`.loop`: :class:`Trainer`, the epoch loop that drives it;
- :mod:`.runner`: the protocol of the runners that decide where steps run (serial here; threads in
  :mod:`loomnet.parallel`, MPI in :mod:`loomnet.distributed`);
- :mod:`.data`: which rows, in what order, how batches are gathered, per-batch L2;
- :mod:`.streams`: every random stream, from (seed, epoch, step, row position).
"""

from ..engine.hooks import TRAINING
from .callbacks import Callback, OverfittingMonitor, OverfittingWarning
from .data import BatchL2, TrainingData
from .history import History, TrainingDivergedError
from .loop import Trainer, fit
from .runner import RUNNERS, SerialRunner
from .step import Batch, Lane, Step
from .stopping import EarlyStopping

TRAINING.fit = fit

__all__ = [
    "RUNNERS", "Batch", "BatchL2", "Callback", "EarlyStopping", "History", "Lane", "OverfittingMonitor",
    "OverfittingWarning", "SerialRunner", "Step", "Trainer", "TrainingData", "TrainingDivergedError", "fit",
]

"""Data-free distillation (``kd.transfer=generator``, ``kd=dafl``): after the teacher is trained the usual way, a
generator is trained against it (DAFL, Chen et al. ICCV 2019) and the student distils on generated images only.

Public names: :func:`data_free_transfer` (what a run calls), :class:`DataFreeTransfer`, :func:`check_data_free`,
:func:`transfer_mode`, :class:`GeneratedDataModule`, :class:`SealedTrainSplit`, :class:`TrainingSplitRead`,
:func:`train_generator`, :func:`generator_losses`, :func:`log_synthesis`.
"""

from kdlab.datafree.prepare import DataFreeTransfer, data_free_transfer, log_synthesis
from kdlab.datafree.settings import GeneratorSettings, check_data_free, transfer_mode
from kdlab.datafree.synthesis import SynthesisHistory, generator_losses, train_generator
from kdlab.datafree.transfer_data import GeneratedDataModule, SealedTrainSplit, TrainingSplitRead

__all__ = [
    "DataFreeTransfer",
    "GeneratedDataModule",
    "GeneratorSettings",
    "SealedTrainSplit",
    "SynthesisHistory",
    "TrainingSplitRead",
    "check_data_free",
    "data_free_transfer",
    "generator_losses",
    "log_synthesis",
    "train_generator",
    "transfer_mode",
]

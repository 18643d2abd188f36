"""One invocation of kdlab: check the config, get the teacher, distil, test, report, write ``results.json``.

``job.run`` is the entry: a single run (``single``), a born-again chain of them (``born_again``), a
teacher-assistant chain (``assistants``) or a deep-mutual-learning cohort (``mutual``, whose extra networks, like
the assistants, are named by ``members``); ``validate``
checks the composed config before any work, ``results`` writes what a run leaves behind, ``summary`` prints it.
"""

from kdlab.run.job import run
from kdlab.run.results import record_failure, write_results
from kdlab.run.validate import validate_config

__all__ = ["record_failure", "run", "validate_config", "write_results"]

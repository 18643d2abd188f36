"""A trained, frozen teacher and its caches.

``recipe`` reads what a teacher needs from the run's config, once; ``prepare`` switches between a single teacher
(``single``: checkpoint, pretrained file, cache or training) and an ensemble (``members`` reads its members);
``cache`` keys and locates trained teachers; ``output_cache`` stores the teacher's outputs on a data set; ``replay``
stores them for augmented views of the training set (random augmentation at the student's cost).
"""

from kdlab.teacher.cache import cache_root, teacher_cache_key
from kdlab.teacher.output_cache import TeacherOutputsPlan, teacher_outputs_plan
from kdlab.teacher.prepare import prepare_teacher
from kdlab.teacher.recipe import EnsembleRecipe, TeacherRecipe, teacher_recipe
from kdlab.teacher.replay import replay_plan
from kdlab.teacher.source import TeacherSource

__all__ = [
    "EnsembleRecipe",
    "TeacherOutputsPlan",
    "TeacherRecipe",
    "TeacherSource",
    "cache_root",
    "prepare_teacher",
    "replay_plan",
    "teacher_cache_key",
    "teacher_outputs_plan",
    "teacher_recipe",
]

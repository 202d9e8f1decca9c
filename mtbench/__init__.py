"""mtbench: multi-task learning for medical-image prognosis.

The data flow is one-directional::

    source adapter -> split -> Dataset -> DataLoader -> MultiTaskModel -> MultiTaskLoss
        -> fit / predict -> Predictions table -> metrics -> stats -> report / plots

The most used names are importable from the top level.
"""

__version__ = "0.1.0"

from mtbench.tasks import Task  # noqa: E402
from mtbench.models import MultiTaskModel, create_backbone, create_model, list_backbones  # noqa: E402
from mtbench.mtl import MultiTaskLoss, create_weighting, list_weightings  # noqa: E402
from mtbench.profiles import current_profile, data_root  # noqa: E402

__all__ = [
    "MultiTaskLoss",
    "MultiTaskModel",
    "Task",
    "__version__",
    "create_backbone",
    "create_model",
    "create_weighting",
    "current_profile",
    "data_root",
    "list_backbones",
    "list_weightings",
]

"""Weighting strategies: how per-task losses are combined into the one scalar that is optimised.

Strategies are separate, swappable pieces (as in LibMTL): a :class:`Weighting` receives the
losses of the tasks *present in the batch* and returns the total. A task absent from a batch
(no labelled sample) is simply not in the dict: it contributes no term and no update.

``create_weighting(name, tasks, **kwargs)`` builds one from the registry; ``list_weightings()``
lists them. Register more with :func:`register_weighting`.

Registered strategies
---------------------
``equal``        every present task weight 1.
``fixed``        user-given weights (e.g. Cobo et al. 2024's 0.4/0.3/0.3).
``uncertainty``  learned homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018).
``dwa``          dynamic weight average from the epoch-to-epoch loss ratios (Liu, Johns & Davison, CVPR 2019).
``random``       random loss weighting, RLW (Lin et al., TMLR 2022).
``gradnorm``     learned weights that balance per-task gradient norms (Chen et al., ICML 2018).
``pcgrad``       gradient surgery: remove the conflicting component of task gradients (Yu et al., NeurIPS 2020).

How strategies hook into training
---------------------------------
Every strategy returns one scalar; the training loop calls ``total.backward()`` on it and steps
one optimizer over the model *and* the weighting's parameters, so no strategy needs a special loop.

* Learned weights (``uncertainty``, ``gradnorm``) are ``nn.Parameter`` s of the weighting; one
  parameter per task, so a task missing from a batch gets no gradient and the optimizer leaves it
  alone (PyTorch optimizers skip parameters whose ``.grad`` is ``None``).
* Gradient-based strategies (``gradnorm``, ``pcgrad``) set ``needs_features = True``: the loop
  passes the backbone's pooled features and the strategy takes per-task gradients with respect to
  that **shared representation** (not every shared parameter), which costs one small backward
  pass per task through the heads only, so it stays affordable on 3D volumes. They return a
  *surrogate* scalar whose value is the weighted loss (what is logged) and whose gradient is the
  one the method prescribes (``x + (y - y.detach())`` has the value of ``x`` and the gradient of
  ``x + y``).
* Epoch-level strategies (``dwa``) update in :meth:`Weighting.end_epoch`, which the loop calls with
  the epoch's mean training loss per task.

Under ``torch.no_grad()`` (validation) a weighting never updates its state: :meth:`Weighting.evaluate`
combines the losses with the current weights (``random``: their expectation; ``pcgrad``: the sum).

Every training-time call is recorded in a per-step log (:meth:`Weighting.weight_log`): the weight
of each present task and, for gradient-based strategies, gradient statistics.
"""

from mtbench.mtl.weighting.base import WEIGHTINGS, Weighting, create_weighting, list_weightings, register_weighting
from mtbench.mtl.weighting import gradient, loss_based  # noqa: F401  (register the strategies)
from mtbench.mtl.weighting.gradient import GradNorm, PCGrad
from mtbench.mtl.weighting.loss_based import (
    DynamicWeightAverage,
    EqualWeighting,
    FixedWeighting,
    RandomLossWeighting,
    UncertaintyWeighting,
)

__all__ = [
    "WEIGHTINGS", "Weighting", "create_weighting", "list_weightings", "register_weighting",
    "DynamicWeightAverage", "EqualWeighting", "FixedWeighting", "GradNorm", "PCGrad", "RandomLossWeighting",
    "UncertaintyWeighting",
]

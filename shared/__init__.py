"""papersuite's own package: data, models, training, metrics, plots, claims and the runner.

Submodules are imported explicitly (``from shared import config, claims``) so that the runner
starts without importing torch.
"""

from shared import kernels as _kernels

_kernels.pin()  # before torch or numpy compute anything: one kernel path on every x86-64 CPU

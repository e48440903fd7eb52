"""papersuite's own package: data, models, training, metrics, plots, claims and the runner.

Submodules are imported explicitly (``from shared import config, claims``) so that the runner
starts without importing torch.
"""

"""The training side: settings, experiment files, legacy translation, envs, presets,
the training loop and what a run writes while it trains.

May import: launcher.contract, launcher.errors. Nothing of the cluster, results or CLI.
"""

"""The results side: what a run left on disk, read back as tables, plots and
TensorBoard.

May import: launcher.training (run logs), launcher.contract, launcher.errors.
"""

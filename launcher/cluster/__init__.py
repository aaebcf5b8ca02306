"""The cluster side: the run directory a job starts from, the one node entry point, Ray
process control, host facts, and the two deployments that start nodes: Docker
(`launcher local`) and Slurm.

May import: launcher.training, launcher.contract, launcher.errors.
"""

"""A small environment package of two modules, for `--env gridpkg.env:GridEnv`.

The env imports its world from the other module (`from gridpkg.world import ...`), the
shape of a real project: run from the directory that holds `gridpkg/` (or put it on
PYTHONPATH), and a cluster job copies the package into its run directory.
"""

"""launcher: train Ray RLlib agents locally, in containers and on Slurm clusters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("launcher")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# The controller of the Apptainer test cluster, which is also its login node: a compute node's
# image (Slurm 24.11 client commands, Apptainer) plus Debian trixie's Python 3.13 and pip, and
# neither torch nor Ray. The launcher is installed as a user would (tests/apptainer_cluster.py:
# install-login.sh from the SIF, launcher/cluster/slurm/loginpkg.py); every check that needs
# the training stack runs in the SIF.
ARG BASE=lt-apptainer-node:latest
FROM ${BASE}
RUN apt-get -q -o Acquire::Check-Valid-Until=false update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*

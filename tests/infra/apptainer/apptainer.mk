# The Apptainer test cluster (tests/apptainer_cluster.py): Slurm 24.11 and Apptainer 1.4.5 on
# Debian trixie containers, jobs in launcher-cpu.sif. Included by the Makefile.
.PHONY: apptainer-images apptainer-up apptainer-down test-apptainer

apptainer-images: venv  ## Apptainer cluster images: trixie base (debootstrap, once), node and login images
	$(BIN)/python tests/apptainer_cluster.py build

apptainer-up: venv  ## start the Apptainer test cluster (lt-app-*), building launcher-cpu.sif in it (needs `make image`)
	$(BIN)/python tests/apptainer_cluster.py up

apptainer-down:  ## stop and remove the Apptainer test cluster
	$(PYTHON) tests/apptainer_cluster.py down

test-apptainer: venv  ## Apptainer: SIF build and %test, then jobs in the SIF on Slurm 24.11 (needs `make image`)
	$(BIN)/pytest -q tests/test_apptainer_e2e.py

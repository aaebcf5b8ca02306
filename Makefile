# Every target works on a fresh clone: `make train` and `make test` set up the
# virtual environment first. PYTHON picks the interpreter (>= 3.10).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch: the CPU build where pip can find one (see README, "Installing torch").
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: help venv train test test-quick test-e2e lint bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/launcher: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e '.[test]'
	@touch $@

venv: $(BIN)/launcher  ## create .venv with the launcher and test tools

# TensorFlow (the legacy tf2 framework) only for the tests that cover that path.
$(VENV)/.tf-extra: $(BIN)/launcher
	$(PIP_INSTALL) -e '.[test,tf]'
	@touch $@

train: venv  ## train PPO on CartPole-v1 locally until solved
	$(BIN)/launcher train --env CartPole-v1

test: venv $(VENV)/.tf-extra  ## all tests, the end-to-end ones included (Docker, Slurm: see README "Tests")
	$(BIN)/ruff check launcher tests bench
	$(BIN)/pytest -q

test-quick: venv  ## the quick suite (< 1 min): no training, no Docker, no Slurm
	$(BIN)/pytest -q -m "not slow"

lint: venv  ## ruff
	$(BIN)/ruff check launcher tests bench

bench: venv  ## time-to-solve and startup vs the tutorial's config; evaluate start to first episode
	$(BIN)/python bench/solve_time.py
	$(BIN)/python bench/evaluate_start.py

clean:  ## remove the virtual environment and local results
	rm -rf $(VENV) ray_results results

# --- images ---
# Container images (README, "Container images"). Docker with BuildKit: Debian's client
# (/usr/bin/docker) has it built in; a client without buildx does not.
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)
export DOCKER
# EXTRA_REQUIREMENTS=FILE: `make image` / `make image-gpu` then also build launcher:cpu-extra /
# launcher:gpu-extra (TAG=... names it) with FILE's packages on top (Dockerfile.extra);
# SIF_FROM=IMAGE: `make sif` / `make sif-gpu` build from that local image (docker save).
image_then_extra = TAG= images/build.sh $(1)$(if $(EXTRA_REQUIREMENTS), && EXTRA_REQUIREMENTS='$(EXTRA_REQUIREMENTS)' images/build.sh extra $(1))
sif_from = $(if $(SIF_FROM),mkdir -p build && $(DOCKER) save '$(SIF_FROM)' -o build/sif-image.tar && SIF='$(subst :,-,$(notdir $(SIF_FROM))).sif' images/sif.sh $(1) build/sif-image.tar; status=$$?; rm -f build/sif-image.tar; exit $$status,images/sif.sh $(1))
.PHONY: base-image image image-gpu wheelhouse lock sif sif-gpu bench-image

base-image:  ## local Debian base image (debootstrap -> launcher-base:bookworm), for sites without a registry
	images/base-image.sh launcher-base:bookworm

image:  ## build launcher:cpu (FRAMEWORK=tf: launcher:cpu-tf); EXTRA_REQUIREMENTS=FILE: also launcher:cpu-extra
	$(if $(EXTRA_REQUIREMENTS),$(call image_then_extra,cpu),images/build.sh cpu)

image-gpu:  ## build launcher:gpu (CUDA torch, several GB to download); EXTRA_REQUIREMENTS=FILE: also launcher:gpu-extra
	$(if $(EXTRA_REQUIREMENTS),$(call image_then_extra,gpu),images/build.sh gpu)

wheelhouse:  ## resolve every wheel of the CPU image on the host, so `make image` needs no network
	images/wheelhouse.sh all $(if $(filter tf,$(FRAMEWORK)),tf)

lock: venv  ## re-pin images/requirements*.txt after a dependency change in pyproject.toml
	$(BIN)/python images/lock.py

sif:  ## apptainer SIF from the local launcher:cpu image -> launcher-cpu.sif (SIF_FROM=launcher:cpu-extra -> launcher-cpu-extra.sif)
	$(call sif_from,cpu)

sif-gpu:  ## apptainer SIF from the local launcher:gpu image -> launcher-gpu.sif (SIF_FROM=launcher:gpu-extra)
	$(call sif_from,gpu)

bench-image: venv  ## image size, code-only rebuild time, docker run to first training iteration
	$(BIN)/python bench/image.py --baseline

# --- local ---
.PHONY: bench-local
bench-local: venv  ## launcher local: start -> all nodes joined, and the CartPole smoke run (needs `make image`)
	$(BIN)/python bench/local_cluster.py --runs 3

# --- slurm ---
.PHONY: slurm-up slurm-down test-slurm bench-slurm
slurm-up: venv  ## start the Slurm test cluster (containers lt-slurm-*, from launcher:cpu; needs `make image`)
	$(BIN)/python tests/slurm_cluster.py up

slurm-down:  ## stop and remove the Slurm test cluster
	$(PYTHON) tests/slurm_cluster.py down

test-slurm: venv  ## Slurm: render/quoting tests, then the end-to-end jobs on the container cluster
	$(BIN)/pytest -q tests/test_slurm_render.py tests/test_slurm_quoting.py tests/test_slurm_cli.py tests/test_slurm_script.py tests/test_slurm_e2e.py

bench-slurm: venv  ## Slurm: job start -> head + 3 rollout + learner joined, vs the tutorial's fixed sleeps
	$(BIN)/python bench/slurm_join.py

# --- apptainer (Slurm 24.11 + Apptainer test cluster) ---
include tests/infra/apptainer/apptainer.mk

# --- sweeps ---
.PHONY: bench-sweep
bench-sweep: venv  ## 4 CartPole-v1 seeds: one sweep vs one after another, and the ratio
	$(BIN)/python bench/sweep.py

# --- speed (issue 17) ---
.PHONY: bench-peers bench-scale
$(VENV)/.bench-extra: $(BIN)/launcher
	$(PIP_INSTALL) -e '.[test,bench]'
	@touch $@

bench-peers: venv $(VENV)/.bench-extra  ## start -> solved vs Stable-Baselines3 (zoo settings), median of 5 seeds; DQN/SAC env steps/s (SEEDS=N)
	$(BIN)/python bench/peers.py --seeds $(or $(SEEDS),5)

bench-scale: venv  ## env steps/s with 1-8 rollout nodes (launcher local) and 1, 3 on Slurm for slow envs, vs linear and the simulator limit; a PNG (IMAGE=launcher:cpu, WHERE=local|slurm)
	$(BIN)/python bench/scale.py --image $(or $(IMAGE),launcher:cpu) $(if $(WHERE),--where $(WHERE))

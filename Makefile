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

train: venv  ## train PPO on CartPole-v1 locally until solved
	$(BIN)/launcher train --env CartPole-v1

test: venv  ## all tests: quick suite, then the slow end-to-end ones
	$(BIN)/ruff check launcher tests bench
	$(BIN)/pytest -q

test-quick: venv  ## the quick suite (< 1 min): no training, no Docker, no Slurm
	$(BIN)/pytest -q -m "not slow"

lint: venv  ## ruff
	$(BIN)/ruff check launcher tests bench

bench: venv  ## time-to-solve and startup: launcher defaults vs the tutorial's config
	$(BIN)/python bench/solve_time.py

clean:  ## remove the virtual environment and local results
	rm -rf $(VENV) ray_results results

# The two commands of the README:
#   make run    create .venv if needed, then run the pipeline on the default
#               configuration of params.yaml (MNIST, quick profile), build the
#               HTML report and print where everything is, with the headline numbers
#   make test   create .venv if needed, then run the whole test suite
# and, without training anything:
#   make demo   samples and the latent-editing figure from the committed reference model
#   make editor the part-by-part editor in the browser over the committed reference model
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# pytest processes of make test (pytest-xdist): much of a pipeline test is one process at a time
# (Python start-up, Snakemake's scheduling), so a second worker uses the core the first leaves idle.
TEST_WORKERS ?= 2
export PATH := $(CURDIR)/$(BIN):$(PATH)
export NPDRAW_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install run test test-fast demo editor faults lint pythons bench clean-venv
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock scripts/install-deps.sh
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	bash scripts/install-deps.sh $(BIN)/python
	touch $@

run: install
	$(BIN)/python -m npdraw.workflow.recovery   # after a crash: clears locks and temporaries of dead processes
	# Snakemake sends each stage's progress bars to its log; the watcher prints them here as they move.
	$(BIN)/snakemake --cores $(CORES) --rerun-incomplete & pid=$$!; \
	    $(BIN)/python -m npdraw.reporting.progress --pid $$pid; wait $$pid
	$(BIN)/snakemake --report results/report.html
	$(BIN)/python -m npdraw.reporting.summary

test: install   # TEST_WORKERS pytest processes (pytest-xdist); a worker idle at the end takes the other's queue
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=10

test-fast: install   # the unit tests alone (no pipeline, stage CLI, browser or kill-and-rerun runs)
	$(BIN)/python -m pytest -q -m "not slow and not fault"

demo: install
	$(BIN)/python -m npdraw.reporting.demo --out results/demo

editor: install   # the part-by-part editor over the committed reference model: http://127.0.0.1:8765
	$(BIN)/npdraw edit --serve

faults: install
	$(BIN)/python -m pytest -q -m fault

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

pythons:   # the torch-free core under Python 3.12 and 3.13 where this machine has them
	bash scripts/check-pythons.sh

bench: install
	$(BIN)/python -m benchmarks.bench_parse
	$(BIN)/python -m benchmarks.bench_bank
	$(BIN)/python -m benchmarks.bench_prior
	$(BIN)/python -m benchmarks.bench_model
	$(BIN)/python -m benchmarks.bench_layers
	$(BIN)/python -m benchmarks.bench_evaluate
	$(BIN)/python -m benchmarks.bench_pixelcnn
	$(BIN)/python -m benchmarks.bench_baselines

clean-venv:
	rm -rf $(VENV)

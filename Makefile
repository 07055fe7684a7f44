# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch held on this machine; users get `torch>=2.1` from pyproject.toml.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint docs bench bench-pre gpu-validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TORCH_PIN)"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python examples/quickstart.py

test: install
	$(BIN)/python -m pytest -q tests
	$(BIN)/mkdocs build --strict -q -d $(VENV)/site

lint: install
	$(BIN)/ruff check lightning_energy tests benchmarks examples tools
	$(BIN)/ruff format --check lightning_energy tests benchmarks examples tools
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/step_accuracy.py
	$(BIN)/python benchmarks/stop_accuracy.py --quick
	$(BIN)/python benchmarks/pre_accuracy.py --quick

# The full PRE benchmark (about 4 minutes): every table, and it rewrites docs/pre.md and docs/img.
bench-pre: install
	$(BIN)/python benchmarks/pre_accuracy.py --plots docs/img --docs docs/pre.md

# The GPU visit (benchmarks/gpu/README.md): the machine's own Python with CUDA torch; no venv, no install.
GPU_PYTHON ?= python3
GPU_OUT ?= gpu_results

gpu-validate:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) benchmarks/gpu/visit.py --out $(GPU_OUT) --budget-s 450

clean:
	rm -rf $(VENV) build dist *.egg-info

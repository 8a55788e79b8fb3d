# Two commands do all set-up on a fresh machine:
#   make demo   set up, then fetch MNIST, train the paper's LSTM for one epoch, classify a few test digits
#   make test   set up, then run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EPOCHS ?= 1
RUN_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup demo test test-all lint format clean

setup: $(VENV)/.installed

# --system-site-packages lets a machine's own (CUDA) torch serve; where there is none, torch==2.13.0
# (the CPU build on a CPU machine) is installed first, so that resolving "torch>=2.6" never pulls a
# multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: setup
	$(BIN)/digitlab train --model lstm --epochs $(EPOCHS) --run-dir $(RUN_DIR)
	$(BIN)/digitlab predict $(RUN_DIR) --test-samples 3

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

# ruff: formatting and lint rules are in pyproject.toml ([tool.ruff]); `make format` applies both.
lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache

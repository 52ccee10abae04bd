# `make demo` and `make test` set everything up on a fresh clone (a virtual
# environment in .venv with PyTorch and this package) and then run.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test

$(VENV)/installed.stamp: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet $(TORCH)
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/installed.stamp

demo: setup
	$(VENV)/bin/ainnoseg demo

test: setup
	$(PYTHON) -m pytest

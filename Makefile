# `make dashboard`, `make demo` and `make test` set everything up on a fresh
# clone (a virtual environment in .venv with PyTorch and this package) and then run.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup dashboard demo test

$(VENV)/installed.stamp: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet $(TORCH)
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/app.stamp: $(VENV)/installed.stamp
	$(PYTHON) -m pip install --quiet -e ".[app]"
	touch $@

setup: $(VENV)/installed.stamp

# The dashboard on http://127.0.0.1:8501 (this machine only).
dashboard: $(VENV)/app.stamp
	$(VENV)/bin/streamlit run app/dashboard.py --server.address 127.0.0.1

demo: setup
	$(VENV)/bin/ainnoseg demo

$(VENV)/gradio.stamp: $(VENV)/installed.stamp
	$(PYTHON) -m pip install --quiet -e ".[demo]"
	touch $@

# The comparison demo in the browser on http://127.0.0.1:7860 (this machine only).
.PHONY: gradio
gradio: $(VENV)/gradio.stamp
	$(PYTHON) app/demo.py

test: setup
	$(PYTHON) -m pytest

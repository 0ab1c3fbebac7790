# Every target builds its own environment from nothing: a bootstrap venv holding uv,
# then the project venv synced exactly from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(VENV)/bin

.PHONY: venv demo test soak lint format bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	touch $@

venv: $(VENV)/.synced

demo: venv
	$(RUN)/uysp demo

test: venv
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/pytest -q

soak: venv
	SOAK=week $(RUN)/pytest tests/soak -s -q

format: venv
	$(RUN)/ruff format .
	$(RUN)/ruff check --fix .

bench: venv
	$(RUN)/python benchmarks/scheduler_overhead.py

clean:
	rm -rf $(TOOLS) $(VENV) .pytest_cache

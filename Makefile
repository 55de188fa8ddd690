# `make demo`: set up .venv and run a toy edit end to end.  `make test`: set up and run the whole test suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# On a fresh CPU machine, PyPI's torch 2.14.1 + torchvision 0.29.1 pair works (see DEVELOPERS.md for the traps).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test lab browser book generate notebooks train bench clean
setup: $(VENV)/.ready

$(VENV)/.ready: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -r requirements-dev.txt -e .
	touch $@

demo: setup
	$(BIN)/python -m dynvfx edit data/examples/green_ball_left.mp4 "add a yellow ball that bounces" \
		--out outputs/demo --overwrite
	@echo "open outputs/demo/result.mp4 (and masks.mp4, plan.json, config.yaml)"

generate: setup
	$(BIN)/python -m dynvfx generate "a red ball moves right on a gray background" --out outputs/generated.mp4 --overwrite

test: setup browser
	$(BIN)/python -m pytest -q tests notebooks --nbval-lax

# JupyterLab on the chapters; the kernel they name (python3) is registered as this .venv's Python.
lab: setup
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dynvfx)"
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# Debian's Chromium, which the browser tests drive with playwright (tests/browser.py); apt installs it if missing.
APT := $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ $(APT) update -qq && $(APT) install -y -qq chromium >/dev/null; } || \
		{ echo "make browser: Chromium is missing and apt-get could not install it;" \
		       "install it (Debian/Ubuntu: sudo apt-get install chromium) and run make again" >&2; exit 1; }

# The course book: the executed chapters and docs/ as a static website in site/ (nothing is run or fetched).
book: setup
	$(BIN)/python book/build.py site

notebooks: setup
	$(BIN)/python notebooks/build.py

# The shipped toy model's recipe, stage by stage (scripts/train_recipe.py; resumable; --dry-run lists the stages).
train: setup
	$(BIN)/python scripts/train_recipe.py

bench: setup
	$(BIN)/python benchmarks/toy_model_quality.py
	$(BIN)/python benchmarks/toy_edit.py
	$(BIN)/python benchmarks/toy_word_sensitivity.py

clean:
	rm -rf outputs .pytest_cache

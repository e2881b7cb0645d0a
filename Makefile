# `make demo` and `make test` work on a fresh clone: they create .venv and install vaekit
# with the pinned versions in constraints.txt (torch 2.13.0, CPU wheel) first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench crash-test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	# the lpips package only for its shipped LPIPS lin weights: --no-deps, its torchvision cannot sit beside torch
	$(BIN)/pip install --quiet --no-deps -c constraints.txt lpips
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vaekit demo --out runs/demo

# the suite on TEST_WORKERS processes (pytest-xdist, one torch thread each); `pytest tests/test_x.py` runs serially
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# full recipe runs on Fashion-MNIST (apt-get install dataset-fashion-mnist); about 25 minutes on 2 cores
bench: $(STAMP)
	$(BIN)/python benchmarks/recipes.py --data fashion-mnist --recipes mlp conv

# SIGKILL at 20 random moments per variant (vae, factorvae, vqvae, resnet-stream, kl-patchgan, vqgan-ema),
# resume after each, compare bits
crash-test: $(STAMP)
	$(BIN)/python benchmarks/kill_resume.py --kills 20 --epochs 6 --save

clean:
	rm -rf $(VENV) runs .pytest_cache

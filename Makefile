# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On machines without CUDA the CPU build of torch is installed first, so that
# resolving `torch>=2.3` never pulls the multi-GB CUDA wheels.
TORCH_CPU_SPEC ?= torch==2.13.0

# The mini model (docs/mini_model.md): every stage from nothing, resumable: stage 0 (VAE),
# stage 1 (UNet, appearance encoder, ControlNet), stage 1b (stage 1 continued), stage 2 (motion
# modules); stage 2's export is packed into the package. Re-running continues each stage from
# its latest checkpoint (a finished stage only re-exports). Passing PY=... on the command line
# uses that interpreter and skips `install`. On a shared machine:
#   make mini-model PY=/path/to/python MINI_NICE="nice -n 19" MINI_THREADS=1
# MINI_ARGS is added to every stage's command line, e.g. a smoke test of the whole chain:
#   make mini-model PY=... MINI_RUNS=/tmp/mini MINI_WEIGHTS=/tmp/mini/weights MINI_ARGS="--max-steps 3"
MINI_RUNS    ?= runs/mini
MINI_WEIGHTS ?= src/magicanimate/mini_weights
MINI_THREADS ?= 2
MINI_NICE    ?=
MINI_ARGS    ?=
MINI_DEPS    := $(if $(filter command line,$(origin PY)),,install)
# PYTHONPATH: this checkout's code even when PY belongs to another checkout's venv.
MINI_ENV      = PYTHONPATH=$(CURDIR)/src MAGICANIMATE_SYNTHETIC_CACHE=$(MINI_RUNS)/data \
                OMP_NUM_THREADS=$(MINI_THREADS) MKL_NUM_THREADS=$(MINI_THREADS) $(MINI_NICE)
MINI_TRAIN    = $(MINI_ENV) $(PY) -m magicanimate train --resume $(MINI_ARGS)
# Stages 1 to 2 share one table of the frozen VAE's latents (encoded once, ~2.5 min).
MINI_LATENTS  = --set data.latent_cache_dir=$(MINI_RUNS)/latents

.PHONY: install browser test demo clean gpu-check mini-model

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		echo "CUDA device found: torch comes from the regular index"; \
	else \
		echo "no CUDA device: installing the CPU build $(TORCH_CPU_SPEC) first"; \
		$(PY) -m pip install --quiet "$(TORCH_CPU_SPEC)"; \
	fi
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The system Chromium for tests/test_app_browser.py (best effort: apt-get needs root; without a
# browser that test is skipped and says why in the summary).
browser:
	@bash scripts/install_chromium.sh

test: install browser
	$(PY) -m pytest -q

# On a machine with a CUDA GPU: the gpu-marked tests and the full-size benchmark, one JSON (OUT=dir).
gpu-check: install
	PYTHON=$(PY) bash scripts/gpu_check.sh

demo: install
	$(PY) -m magicanimate.demo

mini-model: $(MINI_DEPS)
	$(MINI_TRAIN) --stage 0 --config configs/mini/stage0.yaml --output $(MINI_RUNS)/stage0
	$(MINI_TRAIN) --stage 1 --config configs/mini/stage1.yaml --output $(MINI_RUNS)/stage1 \
		--set model.pretrained=$(MINI_RUNS)/stage0/weights $(MINI_LATENTS)
	$(MINI_TRAIN) --stage 1 --config configs/mini/stage1b.yaml --output $(MINI_RUNS)/stage1b \
		--set model.pretrained=$(MINI_RUNS)/stage1/weights $(MINI_LATENTS)
	$(MINI_TRAIN) --stage 2 --config configs/mini/stage2.yaml --output $(MINI_RUNS)/stage2 \
		--set model.pretrained=$(MINI_RUNS)/stage1b/weights $(MINI_LATENTS)
	$(MINI_ENV) $(PY) -m magicanimate pack-weights $(MINI_RUNS)/stage2/weights $(MINI_WEIGHTS)
	$(MINI_ENV) $(PY) -m magicanimate check-weights $(MINI_WEIGHTS)

clean:
	rm -rf $(VENV) demo_output .pytest_cache

# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# On machines without CUDA the CPU build of torch is installed first, so that
# resolving `torch>=2.3` never pulls the multi-GB CUDA wheels.
TORCH_CPU_SPEC ?= torch==2.13.0

.PHONY: install browser test demo clean gpu-check

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

clean:
	rm -rf $(VENV) demo_output .pytest_cache

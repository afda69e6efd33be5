# dopa_rl: two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench firmware hil venv clean help

help:
	@echo "make demo      build .venv (if needed) and run the end-to-end demo"
	@echo "make test      build .venv (if needed) and run the whole test suite (HIL tests when the emulator is installed)"
	@echo "make bench     run the benchmarks in bench/ (prints ratios against references; bench/run_all.py --quick for a smoke run)"
	@echo "make firmware  build the Arduino firmware with avr-gcc (firmware/build/*.hex)"
	@echo "make hil       run only the hardware-in-the-loop tests (firmware in simavr)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dask,lab,bayes]'
	@# small fits run on ahead-of-time compiled kernels and never load numba (src/dopa_rl/models/aot.py)
	$(PY) -m dopa_rl.models.aot || echo "ahead-of-time kernels not built (no C compiler?): fits use the numba JIT"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dopa-rl demo

# the tests run on every core (pytest-xdist); those that build or run the firmware share one worker
# (xdist_group "firmware", tests/conftest.py); the 25 slowest are listed at the end
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25

bench: $(STAMP)
	$(PY) bench/run_all.py

firmware:
	$(MAKE) -C firmware

hil: $(STAMP) firmware
	$(MAKE) -C firmware test-host
	$(MAKE) -C emulator
	$(PY) -m pytest -q -m hil

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache firmware/build

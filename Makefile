# OpenRDU: `make demo` and `make test` each work as the first command on a fresh machine.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# pytest-xdist workers (2 cores on the reference machine)
JOBS ?= auto
PYTEST_ARGS ?=

.PHONY: help setup demo test test-all lint verilog formal synth bench clean

help:
	@echo "make demo      set up, generate Verilog, run the smoke test on Icarus and Verilator, print a table"
	@echo "make test      set up, run the test suite (soak runs excluded) on both simulators"
	@echo "make test-all  as test, plus the soak runs"
	@echo "make lint      ruff + verilator --lint-only on every generated top of every preset"
	@echo "make verilog   write Verilog for every preset to build/verilog/<preset>/"
	@echo "make formal    every formal property check (SymbiYosys), with a summary table"
	@echo "make synth     synthesise the small preset's PCU, PMU, switch and tile for generic and ECP5 (long)"
	@echo "make bench     simulator speed, kernel, memory and CoE figures (small preset): bench/, docs/performance.md"
	@echo "make setup     .venv, pip install -e .[test], Icarus, Verilator >= 5.036 (built if needed)"
	@echo "make clean     remove build outputs (keeps .venv and the Verilator cache)"

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m openrdu demo

test: setup
	$(PY) -m pytest -n $(JOBS) -m "not soak" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check hdl compiler sim coe_host openrdu tests scripts
	$(PY) -m openrdu lint --preset all

formal: setup
	$(PY) -m openrdu formal --all

# --reuse: a finished point whose Verilog and script are unchanged is not synthesised again
synth: setup
	@for t in generic ecp5; do for u in pmu switch pcu tile; do \
		$(PY) -m openrdu synth $$u --preset small --target $$t --reuse || exit 1; \
	done; done

# openrdu bench --json: tables on stderr; the JSON also lands in bench/results.json
bench: setup
	$(PY) -m openrdu bench --json $(BENCH_ARGS) > /dev/null

verilog: setup
	@for p in $$($(PY) -c 'from hdl.presets import preset_names; print(*preset_names())'); do \
		$(PY) -m openrdu verilog --preset $$p -o build/verilog/$$p || exit 1; \
	done

clean:
	rm -rf build .pytest_cache .ruff_cache results.xml
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

# ACM appliance: build, test, run the lab demo, benchmark.
#
#   make setup   packages, hugepages, hugetlbfs (scripts/setup.sh; root)
#   make build   cargo build --release --workspace
#   make test    setup, build the tests, run them (what .ci/run runs)
#   make run     setup, build, lab "acm" up, start the appliance in it
#   make stop    stop the appliance, lab "acm" down
#   make bench   benchmarks
#   make experiments  the paper's §4 experiments in a lab -> docs/experiments/*.svg
#   make fuzz    every fuzz target for FUZZ_SECONDS (default 60) each (scripts/fuzz.sh)
#   make clean   remove build output
#   make lab-up / lab-down / lab-status [LAB=prefix]   just the lab
#
# CARGO_TARGET_DIR is honoured when set (default ./target).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.PHONY: all setup build test run stop bench fuzz experiments clean lab-up lab-down lab-status help

CARGO ?= cargo
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR

LAB ?= acm
LAB_RUN ?= /run/acm-lab
LAB_STATE := $(LAB_RUN)/$(LAB)
# The appliance hook writes its pids here, one per line; make stop reads it.
APPLIANCE_PIDFILE := $(LAB_STATE)/appliance.pid
RUN_APPLIANCE := lab/run-appliance.sh

all: build

help:
	@sed -n '1,15p' $(firstword $(MAKEFILE_LIST)) | sed 's/^# \{0,1\}//'

setup:
	@scripts/setup.sh

build:
	@echo "== build (release) -> $(CARGO_TARGET_DIR)"
	$(CARGO) build --release --workspace

# Release: the lab tests push real traffic. Compile everything first so a
# compile error is not buried in test output.
test: setup
	@echo "== build tests (release) -> $(CARGO_TARGET_DIR)"
	$(CARGO) test --workspace --release --no-run
	@echo "== test"
	$(CARGO) test --workspace --release
	@echo "== fuzz: every target, $(FUZZ_TEST_RUNS) inputs each from its seeds"
	@FUZZ_RUNS=$(FUZZ_TEST_RUNS) scripts/fuzz.sh

# The short fuzz run of make test: a fixed number of inputs per target, fixed seed.
FUZZ_TEST_RUNS ?= 5000
FUZZ_SECONDS ?= 60
fuzz: setup
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# The paper's experiments (experiments/run.py): its own lab "exp", figures in docs/experiments/.
experiments: setup build
	@python3 experiments/run.py $(if $(ONLY),--only $(ONLY))

run: setup
	@if [ ! -e $(RUN_APPLIANCE) ]; then \
	  echo "make run: dataplane not built yet ($(RUN_APPLIANCE) does not exist)" >&2; exit 1; fi
	@$(MAKE) --no-print-directory build
	@lab/lab.sh up $(LAB)
	@echo "== start appliance ($(RUN_APPLIANCE))"
	@ACM_LAB_PREFIX=$(LAB) ACM_LAB_STATE=$(LAB_STATE) ACM_APPLIANCE_PIDFILE=$(APPLIANCE_PIDFILE) \
	  ACM_BIN_DIR=$(CARGO_TARGET_DIR)/release bash $(RUN_APPLIANCE)

stop:
	@lab/stop-appliance.sh $(APPLIANCE_PIDFILE)
	@lab/lab.sh down $(LAB)

# pktgen against the dataplane and dpdk-testpmd (io) over memif: target/bench/report.{json,md}.
# BENCH_QUICK=1 for the short version; see scripts/bench.sh for core lists and other knobs.
bench: setup
	$(CARGO) build --release -p pktgen -p dataplane -p appliance-config --bins
	@scripts/bench.sh

clean:
	$(CARGO) clean

lab-up:
	@lab/lab.sh up $(LAB)

lab-down:
	@lab/lab.sh down $(LAB)

lab-status:
	@lab/lab.sh status $(LAB)

# Developer entry points for load-balancer. `make` alone lists them.
# Knobs (all optional; empty means the script's default):
#   DURATION, CONNS, THREADS, URL   load (loadtest, pprof, benchmark)
#   LB_ARGS                         extra load-balancer flags for run-dev
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DURATION ?=
CONNS ?=
THREADS ?=
URL ?=
LB_ARGS ?=
export DURATION CONNS THREADS URL

.PHONY: help build run-dev kill test benchmark loadtest kill-loadtest pprof

help: ## list these targets
	@echo "usage: make TARGET [DURATION=30s] [CONNS=64] [THREADS=2] [URL=...] [LB_ARGS=...]"
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## cargo build --release (target/release/load-balancer, target-server)
	$(CARGO) build --release

run-dev: build ## 10 targets on :9000-9009 + balancer on :8080, foreground; Ctrl-C stops all
	scripts/run-dev.sh $(LB_ARGS)

kill: ## stop what run-dev started (pids in .run/dev.pids), from another terminal
	@scripts/stop-pids.sh .run/dev.pids TERM

test: ## fmt --check, clippy -D warnings, all tests, end-to-end again on epoll (what CI runs)
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	@echo "== the end-to-end tests again, with the balancer on epoll (as where io_uring is blocked)"
	MONOIO_FORCE_LEGACY_DRIVER=1 $(CARGO) test --test '*'

benchmark: ## cargo bench, then ../shared/bench/compare.sh vs nginx/HAProxy if present
	scripts/benchmark.sh

loadtest: ## wrk against the running balancer (URL, DURATION=30s, CONNS=64, THREADS=2)
	scripts/loadtest.sh

kill-loadtest: ## stop that wrk (pid in .run/wrk.pid), from another terminal
	@scripts/stop-pids.sh .run/wrk.pid INT

pprof: ## flamegraph of the balancer under wrk load -> profiling/flamegraph-*.svg
	scripts/profile.sh

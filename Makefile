# Developer entry points for load-balancer. `make` alone lists them.
# Knobs (all optional; empty means the script's default):
#   DURATION, CONNECTIONS, THREADS, URL   load (loadtest, pprof, benchmark, compare)
#     CONNS is the older name of CONNECTIONS; when both are set, CONNECTIONS wins
#   BODY, WORKERS                         compare: body bytes, workers per balancer
#   LB_ARGS                               extra load-balancer flags for run-dev
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DURATION ?=
CONNECTIONS ?=
CONNS ?=
THREADS ?=
URL ?=
BODY ?=
WORKERS ?=
LB_ARGS ?=
# One value for every script, which all read CONNS: `override` so that
# CONNECTIONS wins even over a CONNS given on the command line.
override CONNS := $(or $(CONNECTIONS),$(CONNS))
export DURATION CONNS THREADS URL

.PHONY: help build run-dev kill test benchmark compare compare-floor compare-tls floor-profile upgrade-demo idle-memory loadtest kill-loadtest pprof

help: ## list these targets
	@echo "usage: make TARGET [DURATION=30s] [CONNECTIONS=64] [THREADS=2] [URL=...]"
	@echo "                   [BODY=20] [WORKERS=1] [LB_ARGS=...]   (CONNS= works too)"
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

compare: build ## ours beside nginx and HAProxy, a markdown table (DURATION=10, CONNECTIONS=64, BODY=20, WORKERS=1)
	scripts/compare.sh $(if $(DURATION),--duration $(DURATION)) $(if $(CONNS),--conns $(CONNS)) \
		$(if $(BODY),--body $(BODY)) $(if $(WORKERS),--workers $(WORKERS))

compare-floor: build ## the shared referee with its relay-floor row, 3 rounds each: 64 conns 20 B, 16 KiB, 256 KiB; 1000 conns 20 B
	@test -x ../shared/bench/compare.sh || { echo "compare-floor: ../shared/bench/compare.sh not found" >&2; exit 2; }
	../shared/bench/compare.sh --rounds 3 --lb target/release/load-balancer
	../shared/bench/compare.sh --rounds 3 --body 16384 --lb target/release/load-balancer
	../shared/bench/compare.sh --rounds 3 --body 262144 --lb target/release/load-balancer
	../shared/bench/compare.sh --rounds 3 --conns 1000 --lb target/release/load-balancer

compare-tls: build ## HTTPS: ours beside nginx and HAProxy, keep-alive then a handshake per request (as compare)
	scripts/compare.sh --tls $(if $(DURATION),--duration $(DURATION)) $(if $(CONNS),--conns $(CONNS)) \
		$(if $(BODY),--body $(BODY)) $(if $(WORKERS),--workers $(WORKERS))
	scripts/compare.sh --tls --new-conn $(if $(DURATION),--duration $(DURATION)) $(if $(CONNS),--conns $(CONNS)) \
		$(if $(BODY),--body $(BODY)) $(if $(WORKERS),--workers $(WORKERS))

floor-profile: ## where our CPU per request goes beside relay-floor's, by kind of work (perf; CONNECTIONS=64, ROUNDS=3)
	scripts/floor-profile.sh

upgrade-demo: build ## wrk through the balancer while it upgrades itself 3 times (--upgrade-from): 0 errors
	scripts/upgrade-demo.sh $(if $(DURATION),--duration $(DURATION)) $(if $(CONNS),--conns $(CONNS))

idle-memory: build ## bytes per idle keep-alive connection, ours and nginx's, in one run (CONNECTIONS=10000)
	scripts/idle-memory.sh $(if $(CONNS),--conns $(CONNS))

loadtest: ## wrk against the running balancer (URL, DURATION=30s, CONNECTIONS=64, THREADS=2)
	scripts/loadtest.sh

kill-loadtest: ## stop that wrk (pid in .run/wrk.pid), from another terminal
	@scripts/stop-pids.sh .run/wrk.pid INT

pprof: ## flamegraph of the balancer under wrk load -> profiling/flamegraph-*.svg
	scripts/profile.sh

# sparegrid: run `make help` for the targets.

SHELL        := /bin/bash
GO           ?= go
BIN          := bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -X github.com/sparegrid/sparegrid/shared/version.Version=$(VERSION)
BINARIES     := sparegrid-coordinator sparegrid sparegrid-agent
export CGO_ENABLED ?= 0

.PHONY: help deps build test e2e check fuzz demo clean fmt vet bench-testbed

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## Install the Debian packages tests and the demo need (as root)
	@installer/deps.sh

build: ## Build the binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./coordinator/cmd/... ./agent/cmd/...

fmt: ## Check formatting
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## Run go vet
	$(GO) vet ./...

test: ## Unit tests with the race detector (no e2e)
	CGO_ENABLED=1 $(GO) tool gotestsum --format testname -- -race -count=1 $$($(GO) list ./... | grep -v /e2e)

e2e: build ## End-to-end tests: real binaries, real autopkgtest
	SPAREGRID_BIN=$(CURDIR)/$(BIN) $(GO) tool gotestsum --format testname -- -count=1 -timeout 40m ./e2e/...

check: deps fmt vet ## Everything CI runs: deps, fmt, vet, unit tests with -race, e2e
	$(MAKE) build
	SPAREGRID_BIN=$(CURDIR)/$(BIN) CGO_ENABLED=1 $(GO) tool gotestsum --format testname -- -race -count=1 -timeout 60m ./...

fuzz: ## Run every fuzz target for FUZZTIME each (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
	  done; done

demo: deps build ## Run a local grid: coordinator, one agent, real tests of hello and an example package
	@e2e/demo.sh

bench-testbed: ## Benchmark the overlay testbed against autopkgtest's unshare (as root); writes docs/benchmarks.md
	@e2e/bench-testbed.py

clean: ## Remove build output and the demo's state
	rm -rf $(BIN) .demo

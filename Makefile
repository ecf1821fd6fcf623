# regmigrate — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/regmigrate/regmigrate/steps/contract.Version=$(VERSION)
STEPS := export mirror-shard backfill-shard verify switch-mode
# Debian packages the tests start as real servers: registries (htpasswd
# for their authenticated variants) and etcd under kube-apiserver.
APT_PKGS := docker-registry apache2-utils etcd-server
# The demo starts two plain registries and nothing else.
DEMO_APT_PKGS := docker-registry
# Debian packages the tests read regmigrate's output with: skopeo reads what
# it wrote to registries, chromium renders report.html, containerd resolves
# through the node mirror's hosts.toml.
TEST_APT_PKGS := skopeo chromium containerd
TEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: help
help: ## this list
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps deps-apt deps-demo test-deps
test-deps: deps ## alias of deps

deps: deps-apt ## install what the tests need: Debian packages, Go modules, kube-apiserver (built once, cached)
	@missing=""; for b in $(TEST_APT_PKGS); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing from Debian (the tests read what regmigrate writes with skopeo, render report.html in chromium, and resolve through the node mirror with containerd)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq && apt-get install -y -qq $$missing) >/dev/null || { echo "apt-get failed: install$$missing by hand" >&2; exit 1; }; \
	fi
	@$(GO) mod download
	@$(GO) run ./tests/kubeapi/cmd/cluster-api build   # kube-apiserver v1.33.13, cached outside the repo (cold: ~15 min)
	@$(GO) run ./tests/regtest/cmd/build-registries   # distribution v3.0.0 and fakes3, cached outside the repo (cold: 2m37s on 2 cores, empty Go build cache)

deps-apt: # the Debian packages of APT_PKGS
	@missing=""; for b in docker-registry htpasswd etcd; do command -v $$b >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(APT_PKGS) from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq && apt-get install -y -qq $(APT_PKGS)) >/dev/null || { echo "apt-get failed: install $(APT_PKGS) by hand" >&2; exit 1; }; \
	fi

deps-demo: ## install what the demo needs: Debian's docker-registry (the Go modules come with the build)
	@if ! command -v docker-registry >/dev/null; then \
	  echo "== demo: installing $(DEMO_APT_PKGS) from Debian (the registries the demo starts)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq && apt-get install -y -qq $(DEMO_APT_PKGS)) >/dev/null || { echo "apt-get failed: install $(DEMO_APT_PKGS) by hand" >&2; exit 1; }; \
	fi

.PHONY: build
build: ## build regmigrate (with regmigrate-argo-validate beside it) and the step binaries into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./generator/cmd/regmigrate ./generator/cmd/regmigrate-argo-validate
	@for s in $(STEPS); do CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$s ./steps/cmd/$$s || exit 1; done

.PHONY: images
images: ## build the step images (OCI layouts in bin/images, or REGISTRY=host/prefix to push)
	$(GO) run ./images/cmd/build-images --version '$(VERSION)' $(if $(REGISTRY),--push '$(REGISTRY)',--out $(BIN)/images) $(IMAGES_FLAGS)

# The demo builds regmigrate and its own harness, saying what it does: the
# modules to download, then the packages to compile, counted as they
# compile (cold: about 10 minutes on 2 busy cores; see README). Plain go
# build flags (not build's static -trimpath ones): the build cache it fills
# is the one go build and the tests use.
DEMO_PKGS := ./generator/cmd/regmigrate ./tests/cmd/demo

.PHONY: demo
demo: deps-demo ## a real migration between two throwaway registries on an embedded corpus
	@set -o pipefail; mkdir -p $(BIN); \
	echo "== demo: resolving the Go modules regmigrate and the demo use (downloaded into $$($(GO) env GOMODCACHE) the first time)"; \
	total=$$($(GO) list -deps $(DEMO_PKGS) | wc -l) || exit 1; \
	echo "== demo: building $(BIN)/regmigrate and $(BIN)/demo: $$total packages, those not in the Go build cache compiled now (cold: about 10 minutes on 2 cores)"; \
	$(GO) build -v -ldflags '$(LDFLAGS)' -o $(BIN)/ $(DEMO_PKGS) 2>&1 | \
	  awk -v total=$$total '/^[^ :#]+$$/ { n++; if (n % 50 == 0) { printf "   compiled %d packages (of %d)\n", n, total; fflush() } next } { print; fflush() } \
	    END { printf "   compiled %d of %d packages; nothing else needed compiling\n", n, total }'
	@echo "== demo: starting"
	@$(BIN)/demo --regmigrate $(BIN)/regmigrate

.PHONY: test test-unit
test: test-unit e2e ## everything: format check, vet, every test against real registries and kube-apiservers, then the Argo end to end on a real cluster

test-unit: deps ## format check, go mod tidy check, vet and every Go test (real registries and kube-apiservers on loopback), without the Argo cluster
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./tests/argoe2e/...
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: e2e e2e-down
E2E_PKGS := containerd runc containernetworking-plugins iptables postgresql
e2e: deps-apt ## Argo end to end on a real single-node cluster (root; k8s+Argo built once into the cache, ~20 min cold)
	@missing=""; for b in containerd runc ctr iptables /usr/lib/cni/bridge psql; do command -v $$b >/dev/null || [ -x $$b ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing $(E2E_PKGS) from Debian"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get update -qq && apt-get install -y -qq $(E2E_PKGS)) >/dev/null || { echo "apt-get failed: install $(E2E_PKGS) by hand" >&2; exit 1; }; \
	fi
	set -o pipefail; $(GO) test -tags e2e -count=1 -timeout 45m -v ./tests/argoe2e/... 2>&1 | awk -f tests/failrecap.awk

e2e-down: ## stop the node `make e2e` or `node up` left (by PID files) and undo its network changes
	$(GO) run ./tests/cluster/cmd/node down

.PHONY: cluster-api cluster-api-down
cluster-api: ## start a real kube-apiserver + etcd on loopback (binaries cached outside the repo); prints the admin kubeconfig
	$(GO) run ./tests/kubeapi/cmd/cluster-api up

cluster-api-down: ## stop what cluster-api started (by PID)
	$(GO) run ./tests/kubeapi/cmd/cluster-api down

.PHONY: bench
bench: build ## Go benchmarks of the copy engine (see README: Performance)
	$(GO) test -run '^$$' -bench . -benchmem ./steps/... ./tests/...

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)

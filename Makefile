# Self-documenting: `make help` lists every target with its ## comment.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO       ?= go
BIN      ?= bin/server
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/tiledgo/server/internal/version.version=$(VERSION) \
            -X github.com/tiledgo/server/internal/version.commit=$(COMMIT)
# Tests that need PostgreSQL read this; .ci/run sets it. Without it they use
# testcontainers when Docker answers, else skip loudly (fail under CI=true).
TEST_DATABASE_URL ?=
FUZZTIME ?= 10s
# Build tags, none by default. PAM needs no headers to build: libpam is
# loaded at run time. GOTAGS=nopam leaves PAM out entirely (a pam provider
# is then refused at start with a message saying why).
GOTAGS   ?=
TAGS     := $(if $(GOTAGS),-tags "$(GOTAGS)")

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the server binary into bin/server
	$(GO) build $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/server

.PHONY: run
run: ## Serve the built-in demo tree in single-user mode (no database needed)
	$(GO) run $(TAGS) -ldflags "$(LDFLAGS)" ./cmd/server serve demo

.PHONY: test
test: ## Run every test with the race detector (unit, store conformance, end to end)
	TEST_DATABASE_URL="$(TEST_DATABASE_URL)" E2E_BUILD_TAGS="$(GOTAGS)" $(GO) test $(TAGS) -race -count=1 -timeout 20m ./...

.PHONY: test-short
test-short: ## Run the fast unit tests only
	$(GO) test $(TAGS) -short -count=1 ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s; a count such as 1000x also works)
	@for pkg in $$($(GO) list $(TAGS) ./...); do \
	  for f in $$($(GO) test $(TAGS) -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test $(TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(TAGS) ./...

# The load harness needs a PostgreSQL server it may create a database on.
BENCH_DATABASE_URL ?= $(if $(TEST_DATABASE_URL),$(TEST_DATABASE_URL),postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
BENCH_FLAGS ?=

.PHONY: bench
bench: ## Load harness: replicas on PostgreSQL, ratios to same-run baselines; refreshes BENCHMARKS.md and bench/results.json
	GOTAGS="$(GOTAGS)" $(GO) run ./cmd/bench -database "$(BENCH_DATABASE_URL)" $(BENCH_FLAGS)

.PHONY: bench-go
bench-go: ## Run the Go micro-benchmarks
	$(GO) test $(TAGS) -run '^$$' -bench . -benchmem ./...

.PHONY: migrate
migrate: build ## Apply migrations to DATABASE_URI (e.g. make migrate DATABASE_URI=postgresql://...)
	TILED_DATABASE_URI="$(DATABASE_URI)" ./$(BIN) migrate up

.PHONY: compose-up
compose-up: ## Start PostgreSQL, three replicas behind a proxy, Jaeger and Prometheus with docker compose
	docker compose up --build

.PHONY: k8s-validate
k8s-validate: ## Check the Kubernetes manifests and the compose file (strict k8s.io/api decoding, kustomize build, references, alerts; kubectl dry-run when a cluster answers)
	$(GO) test $(TAGS) -count=1 ./deploy/...
	@if command -v kubectl >/dev/null && kubectl cluster-info --request-timeout=3s >/dev/null 2>&1; then \
	  kubectl apply --dry-run=server -k deploy/k8s/; \
	else echo "kubectl dry-run skipped: no cluster answers (the manifest tests above ran)"; fi

SWAGGER_UI_DIR := internal/http/docs/swaggerui
.PHONY: swagger-ui
swagger-ui: ## Refresh the embedded Swagger UI from npm (swagger-ui-dist@$$(cat internal/http/docs/swaggerui/VERSION))
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent swagger-ui-dist@$$(cat $(CURDIR)/$(SWAGGER_UI_DIR)/VERSION) >/dev/null && tar xzf swagger-ui-dist-*.tgz && \
	  cd package && cp swagger-ui-bundle.js swagger-ui.css oauth2-redirect.html oauth2-redirect.js favicon-16x16.png favicon-32x32.png LICENSE NOTICE $(CURDIR)/$(SWAGGER_UI_DIR)/ && \
	  cd $(CURDIR)/$(SWAGGER_UI_DIR) && sha256sum swagger-ui-bundle.js swagger-ui.css oauth2-redirect.html oauth2-redirect.js favicon-16x16.png favicon-32x32.png > SHA256SUMS && \
	  rm -rf $$tmp && echo "swagger-ui-dist $$(cat VERSION) in $(SWAGGER_UI_DIR)"

.PHONY: clean
clean: ## Remove build output
	rm -rf bin

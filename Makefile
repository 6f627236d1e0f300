# docora — common tasks. `make test` is what CI runs (.ci/run).
GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/docora/docora/internal/cli.version=$(VERSION)

.PHONY: all build test fmt-check vet lint unit docs check-docs demo clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/docora ./cmd/docora

## test: everything CI checks — formatting, vet, staticcheck, generated docs, a CGO_ENABLED=0
## build, the race-enabled test suite (unit, integration, testscripts) and the offline demo.
test: fmt-check vet lint check-docs build unit demo

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

## docs: regenerate completions/, man/ and docs/cli/
docs:
	$(GO) run ./internal/gendocs -out .

check-docs:
	@tmp=$$(mktemp -d) && $(GO) run ./internal/gendocs -out $$tmp && \
	  diff -r completions $$tmp/completions && diff -r man $$tmp/man && diff -r docs/cli $$tmp/docs/cli && \
	  rm -rf $$tmp || { echo "completions/, man/ or docs/cli/ are stale: run 'make docs' and commit"; exit 1; }

demo:
	$(GO) run ./cmd/docora demo

clean:
	rm -rf bin dist

## bench: change-detection benchmarks (docs/performance.md). Generates its repositories (up to
## 1.2 GB) in $TMPDIR/docora-bench, serves them on 127.0.0.1, prints a Markdown table and
## removes the directory; BENCHFLAGS passes flags (-keep, -runs 5, -scenarios first, -h).
.PHONY: bench
bench:
	$(GO) run ./internal/benchmark/cmd/detectbench $(BENCHFLAGS)

## bench-deliver: delivery throughput and unchanged-links benchmarks (docs/reliability.md).
.PHONY: bench-deliver
bench-deliver:
	$(GO) run ./internal/benchmark/deliverbench $(BENCHFLAGS)

## crash-trials: kill -9 `docora sync` at random moments, 20 trials, then check the mirror
## is exact and only in-flight deliveries were duplicated (docs/reliability.md).
.PHONY: crash-trials
crash-trials:
	DOCORA_CRASH_TRIALS=20 $(GO) test -run TestCrashTrials -count=1 -v ./internal/reliability

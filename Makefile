# certfleet — shortcuts for the commands the README and docs give. Each
# target prints what it runs; nothing here needs more than Go (and git).
.PHONY: install build test test-short dist clean dev-postgres

# Install the binary into $(go env GOPATH)/bin (add that directory to PATH).
install:
	go install -v ./cmd/certfleet

# Build ./certfleet in the checkout, showing each package as it compiles.
build:
	go build -v -o certfleet ./cmd/certfleet

# The whole suite, as CI runs it (PostgreSQL: see scripts/dev-postgres.sh).
test:
	go test -count=1 -timeout 45m ./...

# Unit tests only: no processes, servers or databases started.
test-short:
	go test -count=1 -short ./...

# Release binaries, SBOMs and SHA256SUMS in dist/ (VERSION=… to name it).
dist:
	scripts/dist.sh

# A throwaway PostgreSQL for the tests, touching no system service.
dev-postgres:
	scripts/dev-postgres.sh

clean:
	rm -rf dist certfleet

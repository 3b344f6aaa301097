// Command gendocs rewrites the generated tables of docs/deployers.md from the
// products' descriptions: go run ./internal/deploy/registry/gendocs
// (from the repository root). TestDocsInStep fails when they drift.
package main

import (
	"fmt"
	"os"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/verify"
)

func main() {
	const path = "docs/deployers.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs: run from the repository root:", err)
		os.Exit(1)
	}
	out, err := deploy.RenderDocs(string(doc), registry.New(registry.Options{}).Products(), verify.Fields)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

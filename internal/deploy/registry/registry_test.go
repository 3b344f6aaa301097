package registry

import (
	"os"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/verify"
)

// TestDocsInStep fails when docs/deployers.md's generated tables differ from
// the products' descriptions.
func TestDocsInStep(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/deployers.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := deploy.RenderDocs(string(doc), New(Options{}).Products(), verify.Fields)
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != want {
		t.Fatal("docs/deployers.md's generated tables are out of date: run go run ./internal/deploy/registry/gendocs")
	}
}

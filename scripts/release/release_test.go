package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDist runs scripts/dist.sh for linux/amd64 into a temporary directory,
// as `make dist` does for every target, and checks what a user downloads:
// the binary runs, SHA256SUMS matches the files, and the SBOM parses and
// names the modules linked in.
func TestDist(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles certfleet")
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "scripts/dist.sh", "linux/amd64")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "DIST_DIR="+dir, "VERSION=v0.0.0-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist.sh: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "certfleet_v0.0.0-test_linux_amd64")

	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(bin, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "serve") {
			t.Fatalf("%s --help: %v\n%s", bin, err, out)
		}
	}

	sums, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(sums)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not `sum  name`", sc.Text())
		}
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil || got != sum {
			t.Fatalf("SHA256SUMS says %s for %s; the file's is %s (%v)", sum, name, got, err)
		}
		listed[name] = true
	}
	for _, name := range []string{filepath.Base(bin), filepath.Base(bin) + ".cdx.json"} {
		if !listed[name] {
			t.Errorf("SHA256SUMS does not list %s", name)
		}
	}

	data, err := os.ReadFile(bin + ".cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	var sbom bom
	if err := json.Unmarshal(data, &sbom); err != nil {
		t.Fatalf("SBOM does not parse: %v", err)
	}
	if sbom.BOMFormat != "CycloneDX" || sbom.Metadata.Component.Name != "github.com/certfleet/certfleet" {
		t.Fatalf("SBOM format %q, component %q", sbom.BOMFormat, sbom.Metadata.Component.Name)
	}
	props := map[string]string{}
	for _, p := range sbom.Metadata.Component.Properties {
		props[p.Name] = p.Value
	}
	if props["go:CGO_ENABLED"] != "0" || props["go:GOOS"] != "linux" || props["go:GOARCH"] != "amd64" {
		t.Errorf("SBOM build settings %v; want a static linux/amd64 build", props)
	}
	binSum, _ := fileSHA256(bin)
	if len(sbom.Metadata.Component.Hashes) != 1 || sbom.Metadata.Component.Hashes[0].Content != binSum {
		t.Errorf("SBOM hash %v; the binary's is %s", sbom.Metadata.Component.Hashes, binSum)
	}
	found := false
	for _, c := range sbom.Components {
		if c.Name == "modernc.org/sqlite" && strings.HasPrefix(c.PURL, "pkg:golang/modernc.org/sqlite@v") {
			found = true
		}
	}
	if !found {
		t.Errorf("SBOM does not list the SQLite driver modernc.org/sqlite among %d components", len(sbom.Components))
	}
}

// Command release is the Go half of scripts/dist.sh: it writes a CycloneDX
// SBOM for a built binary and the SHA256SUMS file of a release directory,
// with the standard library only, so a release needs nothing but Go.
//
//	go run ./scripts/release sbom BINARY > BINARY.cdx.json
//	go run ./scripts/release sums DIR      # writes DIR/SHA256SUMS
//
// The SBOM lists exactly what the linker put in the binary: the module build
// information Go embeds (the same as `go version -m BINARY`), not the module
// graph of go.mod, which also names test-only and other-platform modules.
// It is not for signing or publishing releases.
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "sbom":
		err = writeSBOM(os.Stdout, os.Args[2])
	case "sums":
		err = writeSums(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: release sbom BINARY | release sums DIR")
	os.Exit(2)
}

// bom is the part of CycloneDX 1.5 JSON this tool writes.
type bom struct {
	BOMFormat    string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	Version      int          `json:"version"`
	Metadata     bomMetadata  `json:"metadata"`
	Components   []component  `json:"components"`
	Dependencies []dependency `json:"dependencies"`
}

type bomMetadata struct {
	Timestamp string      `json:"timestamp,omitempty"`
	Tools     []component `json:"tools"`
	Component component   `json:"component"`
}

type component struct {
	Type       string     `json:"type"`
	BOMRef     string     `json:"bom-ref,omitempty"`
	Name       string     `json:"name"`
	Version    string     `json:"version,omitempty"`
	PURL       string     `json:"purl,omitempty"`
	Hashes     []hash     `json:"hashes,omitempty"`
	Properties []property `json:"properties,omitempty"`
}

type hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// writeSBOM writes the CycloneDX SBOM of the Go binary at path: the main
// module (with the binary's SHA-256, target platform and VCS revision) and
// every module linked into it. Replaced modules are listed as what was built.
func writeSBOM(w io.Writer, path string) error {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	main := component{
		Type:    "application",
		Name:    info.Main.Path,
		Version: info.Main.Version,
		Hashes:  []hash{{Alg: "SHA-256", Content: sum}},
		Properties: []property{
			{Name: "go:version", Value: info.GoVersion},
			{Name: "go:GOOS", Value: settings["GOOS"]},
			{Name: "go:GOARCH", Value: settings["GOARCH"]},
			{Name: "go:CGO_ENABLED", Value: settings["CGO_ENABLED"]},
			{Name: "vcs:revision", Value: settings["vcs.revision"]},
			{Name: "vcs:modified", Value: settings["vcs.modified"]},
		},
	}
	main.BOMRef = purl(info.Main.Path, info.Main.Version)
	main.PURL = main.BOMRef
	b := bom{
		BOMFormat:   "CycloneDX",
		SpecVersion: "1.5",
		Version:     1,
		Metadata: bomMetadata{
			Timestamp: settings["vcs.time"],
			Tools:     []component{{Type: "application", Name: "certfleet scripts/release"}},
			Component: main,
		},
		Components: []component{},
	}
	// The Go toolchain's standard library is linked in too.
	std := component{Type: "library", Name: "stdlib", Version: info.GoVersion, PURL: purl("stdlib", info.GoVersion)}
	std.BOMRef = std.PURL
	b.Components = append(b.Components, std)
	deps := []string{std.BOMRef}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		c := component{Type: "library", Name: m.Path, Version: m.Version, PURL: purl(m.Path, m.Version)}
		c.BOMRef = c.PURL
		if m.Sum != "" {
			c.Properties = []property{{Name: "go:sum", Value: m.Sum}}
		}
		b.Components = append(b.Components, c)
		deps = append(deps, c.BOMRef)
	}
	b.Dependencies = []dependency{{Ref: main.BOMRef, DependsOn: deps}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

// purl is the package URL of a Go module (pkg:golang/path@version).
func purl(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		p += "@" + version
	}
	return p
}

// writeSums writes dir/SHA256SUMS in the format `sha256sum -c` reads: one
// line per regular file of dir (except SHA256SUMS itself), in name order
// (os.ReadDir sorts).
func writeSums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sums: %w", err)
	}
	var lines []string
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "SHA256SUMS" {
			continue
		}
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("sums: %w", err)
		}
		lines = append(lines, sum+"  "+e.Name()+"\n")
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "")), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

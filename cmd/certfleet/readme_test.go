package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestReadmeWalkthrough runs the README's "first deployment" commands, as
// written, against a fresh server: the quick start must stay true.
func TestReadmeWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	envLine, steps := readmeWalkthrough(t, string(readme))

	n := setupWith(t, "--local-reload-allow", "touch {root}/reloaded")
	work := t.TempDir()
	ch := certstest.New(t, certstest.Options{DNSNames: []string{"www.example.com"}})
	os.WriteFile(filepath.Join(work, "fullchain.pem"), []byte(ch.CertPEM), 0o600)
	os.WriteFile(filepath.Join(work, "key.pem"), []byte(ch.KeyPEM), 0o600)
	subst := strings.NewReplacer(
		"./certfleet-data", n.dataDir,
		"127.0.0.1:8080", n.addr,
		"/srv/tls", n.localRoot,
		"systemctl reload nginx", "touch "+filepath.Join(n.localRoot, "reloaded"),
		"fullchain.pem", filepath.Join(work, "fullchain.pem"),
		"key.pem", filepath.Join(work, "key.pem"),
	)

	// eval "$(certfleet env …)": run it and keep its exports.
	args := shellWords(t, subst.Replace(envLine))
	out := n.ok(args[1:]...)
	var env []string
	for _, f := range shellWords(t, strings.TrimPrefix(strings.TrimSpace(out), "export ")) {
		env = append(env, f)
	}
	for _, step := range steps {
		args := shellWords(t, subst.Replace(step))
		if args[0] != "certfleet" {
			t.Fatalf("README step %q does not run certfleet", step)
		}
		r := n.run(env, "", args[1:]...)
		if r.code != 0 {
			t.Fatalf("README step %q: exit %d\nstdout: %s\nstderr: %s", step, r.code, r.stdout, r.stderr)
		}
	}
	got, err := os.ReadFile(filepath.Join(n.localRoot, "www.pem"))
	if err != nil || string(got) != ch.CertPEM {
		t.Fatalf("after the walkthrough /srv/tls/www.pem = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(n.localRoot, "reloaded")); err != nil {
		t.Fatalf("the reload command did not run: %v", err)
	}
}

// readmeWalkthrough extracts the `certfleet env` line and the commands of the
// "A first deployment, end to end" block, joining continued lines and
// dropping comments.
func readmeWalkthrough(t *testing.T, readme string) (envLine string, steps []string) {
	t.Helper()
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, `eval "$(certfleet env`) {
			envLine = strings.TrimSuffix(strings.TrimPrefix(line, `eval "$(`), `)"`)
			break
		}
	}
	_, rest, ok := strings.Cut(readme, "A first deployment, end to end:")
	if !ok || envLine == "" {
		t.Fatal("README has no walkthrough (\"A first deployment, end to end:\" and the certfleet env line)")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, _ := strings.Cut(rest, "```")
	var cur string
	for _, line := range strings.Split(block, "\n") {
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		if cur += line; strings.TrimSpace(cur) != "" {
			steps = append(steps, strings.TrimSpace(cur))
		}
		cur = ""
	}
	if len(steps) < 4 {
		t.Fatalf("README walkthrough has %d commands", len(steps))
	}
	return envLine, steps
}

// shellWords splits a command line the way a shell would for the simple
// quoting the README uses ('…' and "…").
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

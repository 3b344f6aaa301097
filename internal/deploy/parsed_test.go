package deploy

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestParsedConfig: a Target made by WithParsedConfig is parsed once, its
// copies share the parse (and its error); a copy given another Config, and a
// Target made otherwise, are parsed at each call.
func TestParsedConfig(t *testing.T) {
	calls := 0
	parse := func(c json.RawMessage) (string, error) {
		calls++
		if string(c) == `bad` {
			return "", errors.New("bad Config")
		}
		return "parsed " + string(c), nil
	}
	check := func(what string, tg Target, want string, wantCalls int) {
		t.Helper()
		calls = 0
		for range 3 {
			got, err := ParsedConfig(tg, parse)
			if err != nil {
				got = err.Error()
			}
			if got != want {
				t.Fatalf("%s: ParsedConfig = %q, want %q", what, got, want)
			}
		}
		if calls != wantCalls {
			t.Fatalf("%s: parsed %d times for three calls, want %d", what, calls, wantCalls)
		}
	}
	plain := Target{Config: json.RawMessage(`{"a":1}`)}
	check("a plain Target", plain, `parsed {"a":1}`, 3)
	memo := plain.WithParsedConfig()
	check("WithParsedConfig", memo, `parsed {"a":1}`, 1)
	cp := memo
	check("a copy of it, parsed already", cp, `parsed {"a":1}`, 0)
	cp.Config = json.RawMessage(`{"b":2}`)
	check("a copy given another Config", cp, `parsed {"b":2}`, 3)
	check("the original after its copy changed", memo, `parsed {"a":1}`, 0)
	check("a failing parse", Target{Config: json.RawMessage(`bad`)}.WithParsedConfig(), "bad Config", 1)
}

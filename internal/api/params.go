package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// params reads typed request parameters, turning bad input into *Error.
type params struct{ v url.Values }

// newParams checks every parameter once, before any handler or the store
// sees it: a NUL byte, or bytes that are not UTF-8, in a name or a value are
// refused with InvalidParameter naming the parameter (PostgreSQL cannot
// store either in text, and no parameter of the API needs them).
func newParams(v url.Values) (params, error) {
	for name, vs := range v {
		if strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
			return params{}, errInvalid(strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", `\0`), "?"),
				"the parameter name holds a NUL byte or is not valid UTF-8")
		}
		for _, s := range vs {
			if strings.IndexByte(s, 0) >= 0 {
				return params{}, errInvalid(name, "holds a NUL byte")
			}
			if !utf8.ValidString(s) {
				return params{}, errInvalid(name, "not valid UTF-8")
			}
		}
	}
	return params{v}, nil
}

func (p params) has(name string) bool { return p.v.Get(name) != "" }

func (p params) str(name string) string { return strings.TrimSpace(p.v.Get(name)) }

func (p params) required(name string) (string, error) {
	s := p.str(name)
	if s == "" {
		return "", errMissing(name)
	}
	return s, nil
}

// text is an optional free-text parameter of at most max characters.
func (p params) text(name string, max int) (string, error) {
	s := p.str(name)
	if utf8.RuneCountInString(s) > max {
		return "", errInvalid(name, "longer than %d characters", max)
	}
	if !utf8.ValidString(s) {
		return "", errInvalid(name, "not valid UTF-8")
	}
	return s, nil
}

func (p params) int64(name string) (int64, bool, error) {
	s := p.str(name)
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, errInvalid(name, "%q is not an integer", s)
	}
	return v, true, nil
}

// id is a required positive integer ID.
func (p params) id(name string) (int64, error) {
	v, ok, err := p.int64(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errMissing(name)
	}
	if v <= 0 {
		return 0, errInvalid(name, "must be a positive ID")
	}
	return v, nil
}

func (p params) optID(name string) (int64, error) {
	v, ok, err := p.int64(name)
	if err != nil || !ok {
		return 0, err
	}
	if v <= 0 {
		return 0, errInvalid(name, "must be a positive ID")
	}
	return v, nil
}

func (p params) bool(name string) (bool, error) {
	switch strings.ToLower(p.str(name)) {
	case "":
		return false, nil
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errInvalid(name, "%q is not true or false", p.str(name))
}

// ids parses "1,2,3" or a JSON array "[1,2,3]" into distinct positive IDs, in order.
func (p params) ids(name string, required bool) ([]int64, error) {
	s := p.str(name)
	if s == "" {
		if required {
			return nil, errMissing(name)
		}
		return nil, nil
	}
	var parts []string
	if strings.HasPrefix(s, "[") {
		var nums []json.Number
		if err := json.Unmarshal([]byte(s), &nums); err != nil {
			return nil, errInvalid(name, "not a list of IDs: %v", err)
		}
		for _, n := range nums {
			if n == "" { // a JSON null
				return nil, errInvalid(name, "null is not a positive ID")
			}
			parts = append(parts, n.String())
		}
	} else {
		parts = strings.Split(s, ",")
	}
	seen := map[int64]bool{}
	var out []int64
	for _, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.ParseInt(part, 10, 64)
		if err != nil || v <= 0 {
			return nil, errInvalid(name, "%q is not a positive ID", part)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if len(out) == 0 && required {
		return nil, errMissing(name)
	}
	if len(out) > maxListIDs {
		return nil, errInvalid(name, "at most %d IDs", maxListIDs)
	}
	return out, nil
}

const maxListIDs = 100000

// page returns CurrentPage/ShowSize as offset and limit.
func (p params) page(defaultSize int) (page, size int, err error) {
	cp, ok, err := p.int64("CurrentPage")
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		cp = 1
	}
	if cp < 1 || cp > 1e9 {
		return 0, 0, errInvalid("CurrentPage", "must be between 1 and 1000000000")
	}
	ss, ok, err := p.int64("ShowSize")
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		ss = int64(defaultSize)
	}
	if ss < 1 || ss > 1000 {
		return 0, 0, errInvalid("ShowSize", "must be between 1 and 1000")
	}
	return int(cp), int(ss), nil
}

// epochMS parses an optional epoch-milliseconds time.
func (p params) epochMS(name string) (time.Time, error) {
	v, ok, err := p.int64(name)
	if err != nil || !ok {
		return time.Time{}, err
	}
	if v < 0 {
		return time.Time{}, errInvalid(name, "must be epoch milliseconds")
	}
	if v == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(v), nil
}

// jsonObject validates an optional JSON-object parameter and returns it compacted ("{}" when absent).
func (p params) jsonObject(name string) (string, error) {
	s := p.str(name)
	if s == "" {
		return "{}", nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return "", errInvalid(name, "must be a JSON object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return "", errInvalid(name, "must be a JSON object")
	}
	return b.String(), nil
}

func msString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func msInt(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

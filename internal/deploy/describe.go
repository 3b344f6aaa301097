package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Description is what a product says about itself, once: its name, a
// one-line summary, its Config keys and what its credential holds. Config
// validation, the product tables of docs/deployers.md, the CLI's
// "resource add <cloud> <product>" flags and the ListCloudProducts operation
// are all derived from it. Field names are the JSON names ListCloudProducts
// answers with.
type Description struct {
	CloudName    string
	CloudProduct string
	// Summary is one sentence: what the product writes where.
	Summary string
	// Config lists the resource Config keys, in the order they are documented.
	Config []Field
	// Access says whether a resource needs a CloudAccess and what it holds.
	Access AccessSpec
}

// Name is "cloud/PRODUCT", the prefix of the product's error messages.
func (d Description) Name() string { return d.CloudName + "/" + d.CloudProduct }

// Type is the JSON type of a Config value.
type Type string

// The types a Config key can have.
const (
	// TypeString is a JSON string; a JSON number is accepted and kept as its text.
	TypeString Type = "string"
	// TypeInteger is a whole number; a JSON string of digits ("2222") is accepted.
	TypeInteger Type = "integer"
	// TypeBoolean is true or false; the strings "true" and "false" are accepted.
	TypeBoolean Type = "boolean"
	// TypeStringList is a JSON array of strings; a single string is accepted as a list of one.
	TypeStringList Type = "string-list"
	// TypeObject is a JSON object, checked by the product itself.
	TypeObject Type = "object"
)

// Field describes one Config key.
type Field struct {
	Name string
	Type Type
	// Required keys must be present and not empty.
	Required bool `json:",omitempty"`
	// Default is the value used when the key is absent, as a user would write
	// it; empty when there is none or it depends on the server.
	Default string `json:",omitempty"`
	// Allowed, when not empty, lists the only values a string key may take.
	Allowed []string `json:",omitempty"`
	// Min and Max bound an integer key when either is not zero.
	Min int64 `json:",omitempty"`
	Max int64 `json:",omitempty"`
	// Help is one sentence for a user filling the key in.
	Help string
	// Secret keys hold credentials: sealed at rest and never shown back.
	Secret bool `json:",omitempty"`
}

// AccessNeed says whether a product's resources take a CloudAccess.
type AccessNeed string

// The access needs.
const (
	AccessNone     AccessNeed = "none"
	AccessOptional AccessNeed = "optional"
	AccessRequired AccessNeed = "required"
)

// AccessSpec describes the CloudAccess a product's resources use.
type AccessSpec struct {
	Need AccessNeed
	// CloudName is the CloudName of the CloudAccess; defaults to the product's.
	CloudName string `json:",omitempty"`
	// SecretId and SecretKey say what CreateCloudAccess's fields hold.
	SecretId  string `json:",omitempty"`
	SecretKey string `json:",omitempty"`
	// Config lists the CloudAccess Config keys the product reads.
	Config []Field `json:",omitempty"`
}

// Field returns the Config key named name.
func (d Description) Field(name string) (Field, bool) { return findField(d.Config, name) }

// CheckAccess refuses a credential the product takes none of, and a missing
// one it needs. Errors are permanent.
func (d Description) CheckAccess(hasAccess bool) error {
	switch {
	case d.Access.Need == AccessRequired && !hasAccess:
		return Permanentf("%s needs a credential: set CloudAccessId to a %s CloudAccess (SecretId: %s; SecretKey: %s)",
			d.Name(), d.AccessCloud(), d.Access.SecretId, d.Access.SecretKey)
	case (d.Access.Need == AccessNone || d.Access.Need == "") && hasAccess:
		return Permanentf("%s uses no credential; remove CloudAccessId", d.Name())
	}
	return nil
}

// AccessCloud is the CloudName of the CloudAccess the product's resources
// use: Access.CloudName, else the product's own.
func (d Description) AccessCloud() string {
	if d.Access.CloudName != "" {
		return d.Access.CloudName
	}
	return d.CloudName
}

// NormalizeConfig checks config (a JSON object; empty means {}) against the
// described keys and returns it in canonical form: null values dropped,
// integers and booleans given as strings turned into JSON numbers and
// booleans, a single string for a list turned into a list of one. Errors
// name the key, the product and what is wrong, in words a user understands,
// and are permanent.
func (d Description) NormalizeConfig(config json.RawMessage) (json.RawMessage, error) {
	return NormalizeFields(d.Name(), "Config", d.Config, config)
}

// DecodeConfig normalizes config (NormalizeConfig) and decodes it into v, a
// pointer to the product's Config struct.
func (d Description) DecodeConfig(config json.RawMessage, v any) error {
	return DecodeFields(d.Name(), "Config", d.Config, config, v)
}

// NormalizeFields is NormalizeConfig for any list of keys. product names
// whose keys they are ("ssh/NGINX", "ssh"); what names the object in errors
// ("Config", "CloudAccess Config").
func NormalizeFields(product, what string, fields []Field, config json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(config)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return nil, Permanentf("%s of %s must be a JSON object like {\"Key\": \"value\"}", what, product)
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, Permanentf("%s of %s is not valid JSON: %s", what, product, jsonProblem(err))
	}
	if dec.More() {
		return nil, Permanentf("%s of %s has data after the JSON object", what, product)
	}
	out := make(map[string]json.RawMessage, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := m[k]
		f, ok := findField(fields, k)
		if !ok {
			return nil, Permanent(unknownKey(product, what, fields, k))
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		v, err := f.normalize(raw)
		if err != nil {
			return nil, Permanentf("%s key %q %s", what, k, err.Error())
		}
		if v != nil {
			out[k] = v
		}
	}
	for _, f := range fields {
		if f.Required {
			if _, ok := out[f.Name]; !ok {
				return nil, Permanentf("%s key %q is required for %s: %s", what, f.Name, product, f.Help)
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("%s of %s: %w", what, product, err)
	}
	return b, nil
}

// DecodeFields normalizes config (NormalizeFields) and decodes it into v, a
// pointer to a struct with a field per key. A described key missing from v
// is a programming error, reported as such (deploytest.CheckSchema catches it
// first).
func DecodeFields(product, what string, fields []Field, config json.RawMessage, v any) error {
	norm, err := NormalizeFields(product, what, fields, config)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(norm))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Permanentf("%s of %s: %s", what, product, jsonProblem(err))
	}
	return nil
}

func findField(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func unknownKey(product, what string, fields []Field, k string) error {
	names := make([]string, 0, len(fields))
	best, bestDist := "", 3
	for _, f := range fields {
		names = append(names, f.Name)
		lk, lf := strings.ToLower(k), strings.ToLower(f.Name)
		dist := editDistance(lk, lf)
		if len(lk) >= 4 && strings.HasPrefix(lf, lk) {
			dist = 2 // "Reload" for "ReloadCommand"
		}
		if dist < bestDist {
			best, bestDist = f.Name, dist
		}
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(names) == 0 {
		return fmt.Errorf("%s key %q is unknown for %s%s; it takes no keys", what, k, product, hint)
	}
	return fmt.Errorf("%s key %q is unknown for %s%s; known keys: %s", what, k, product, hint, strings.Join(names, ", "))
}

// normalize returns the canonical JSON of one value, or an error completing
// the sentence "Config key "K" …".
func (f Field) normalize(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	excerpt, quote := excerpt, strconv.Quote
	if f.Secret { // a message must not show a credential, even a mistyped one
		excerpt = func(json.RawMessage) string { return "a value not shown: the key is secret" }
		quote = func(string) string { return excerpt(nil) }
	}
	var s string
	isString := len(raw) > 0 && raw[0] == '"'
	if isString {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("is not a valid JSON string")
		}
	}
	switch f.Type {
	case TypeString:
		if !isString {
			if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
				s = string(raw)
			} else {
				return nil, fmt.Errorf("must be a string (got %s)", excerpt(raw))
			}
		}
		if f.Required && s == "" {
			return nil, fmt.Errorf("must not be empty: %s", f.Help)
		}
		if s == "" {
			return nil, nil
		}
		if len(f.Allowed) > 0 && !slices.Contains(f.Allowed, s) {
			return nil, fmt.Errorf("must be one of %s (got %s)", strings.Join(f.Allowed, ", "), quote(s))
		}
		return json.Marshal(s)
	case TypeInteger:
		text := string(raw)
		if isString {
			text = strings.TrimSpace(s)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			if fl, ferr := strconv.ParseFloat(text, 64); ferr == nil && fl == math.Trunc(fl) && math.Abs(fl) < 1<<53 {
				n, err = int64(fl), nil
			}
		}
		if err != nil || (f.bounded() && (n < f.Min || n > f.Max)) {
			return nil, fmt.Errorf("must be %s (got %s)", f.numberPhrase(), excerpt(raw))
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), nil
	case TypeBoolean:
		text := string(raw)
		if isString {
			text = strings.ToLower(strings.TrimSpace(s))
		}
		switch text {
		case "true", "false":
			return json.RawMessage(text), nil
		}
		return nil, fmt.Errorf("must be true or false (got %s)", excerpt(raw))
	case TypeStringList:
		var list []string
		if isString {
			list = []string{s}
		} else if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("must be a list of strings like [\"a\", \"b\"] (got %s)", excerpt(raw))
		}
		if f.Required && len(list) == 0 {
			return nil, fmt.Errorf("must list at least one value: %s", f.Help)
		}
		for _, v := range list {
			if len(f.Allowed) > 0 && !slices.Contains(f.Allowed, v) {
				return nil, fmt.Errorf("values must be among %s (got %s)", strings.Join(f.Allowed, ", "), quote(v))
			}
		}
		return json.Marshal(list)
	case TypeObject:
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("must be a JSON object (got %s)", excerpt(raw))
		}
		return raw, nil
	}
	return nil, fmt.Errorf("has a type the product does not describe")
}

func (f Field) bounded() bool { return f.Min != 0 || f.Max != 0 }

func (f Field) numberPhrase() string {
	switch {
	case !f.bounded():
		return "a whole number"
	case f.Max == 0 && f.Min > 0:
		return fmt.Sprintf("a number of at least %d", f.Min)
	}
	return fmt.Sprintf("a number from %d to %d", f.Min, f.Max)
}

// excerpt quotes a value for an error message, shortened, on one line.
func excerpt(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 0 && s[0] == '"' {
		var v string
		if json.Unmarshal(raw, &v) == nil {
			s = v
		}
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// jsonProblem describes a JSON decoding error without Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("key %q has the wrong type (a JSON %s)", typ.Field, typ.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return msg
}

// editDistance is the Levenshtein distance of a and b, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

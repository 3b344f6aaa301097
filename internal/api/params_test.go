package api

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func paramsOf(kv ...string) params {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return params{v}
}

// wantParamErr checks err is an *Error with code (and a message naming the
// parameter), or nil when code is "".
func wantParamErr(t *testing.T, err error, code, name string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error %s", err, code)
	}
	if e.Code != code || e.Status != 400 {
		t.Fatalf("got %s %d (%s), want %s 400", e.Code, e.Status, e.Message, code)
	}
	if !strings.Contains(e.Message, name) {
		t.Errorf("message %q does not name %s", e.Message, name)
	}
}

func TestParamsIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		value    *string // nil: absent
		required bool
		want     []int64
		code     string
	}{
		{desc: "comma list", value: ptr("1,2"), want: []int64{1, 2}},
		{desc: "JSON array", value: ptr("[1,2]"), want: []int64{1, 2}},
		{desc: "JSON array of strings", value: ptr(`["3","4"]`), want: []int64{3, 4}},
		{desc: "JSON array with spaces", value: ptr("[ 1 , 2 ]"), want: []int64{1, 2}},
		{desc: "spaces around items", value: ptr(" 1 , 2 "), want: []int64{1, 2}},
		{desc: "one ID", value: ptr("7"), want: []int64{7}},
		{desc: "duplicates are dropped, order kept", value: ptr("3,1,3,2,1"), want: []int64{3, 1, 2}},
		{desc: "JSON duplicates are dropped", value: ptr("[2,2,1]"), want: []int64{2, 1}},
		{desc: "empty items are skipped", value: ptr("1,,2,"), want: []int64{1, 2}},
		{desc: "largest int64", value: ptr("9223372036854775807"), want: []int64{9223372036854775807}},
		{desc: "absent and optional", value: nil, want: nil},
		{desc: "absent and required", value: nil, required: true, code: "MissingParameter"},
		{desc: "blank and required", value: ptr("  "), required: true, code: "MissingParameter"},
		{desc: "only commas and required", value: ptr(",,"), required: true, code: "MissingParameter"},
		{desc: "empty JSON array and required", value: ptr("[]"), required: true, code: "MissingParameter"},
		{desc: "empty JSON array and optional", value: ptr("[]"), want: nil},
		{desc: "garbage", value: ptr("abc"), code: "InvalidParameter"},
		{desc: "garbage among IDs", value: ptr("1,x,3"), code: "InvalidParameter"},
		{desc: "negative", value: ptr("-1"), code: "InvalidParameter"},
		{desc: "negative in JSON", value: ptr("[1,-2]"), code: "InvalidParameter"},
		{desc: "zero", value: ptr("0"), code: "InvalidParameter"},
		{desc: "fraction", value: ptr("[1.5]"), code: "InvalidParameter"},
		{desc: "exponent", value: ptr("[1e3]"), code: "InvalidParameter"},
		{desc: "overflow", value: ptr("9223372036854775808"), code: "InvalidParameter"},
		{desc: "semicolons", value: ptr("1;2"), code: "InvalidParameter"},
		{desc: "unterminated JSON", value: ptr("[1,2"), code: "InvalidParameter"},
		{desc: "JSON object", value: ptr(`{"a":1}`), code: "InvalidParameter"},
		{desc: "JSON booleans", value: ptr("[true]"), code: "InvalidParameter"},
		{desc: "JSON null item", value: ptr("[1,null]"), code: "InvalidParameter"},
		{desc: "JSON nested array", value: ptr("[[1]]"), code: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := paramsOf()
			if tc.value != nil {
				p = paramsOf("CertIds", *tc.value)
			}
			got, err := p.ids("CertIds", tc.required)
			wantParamErr(t, err, tc.code, "CertIds")
			if tc.code == "" && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParamsIDsLimit(t *testing.T) {
	t.Parallel()
	many := make([]string, maxListIDs+1)
	for i := range many {
		many[i] = itoa(int64(i + 1))
	}
	if _, err := paramsOf("ResourceIds", strings.Join(many[:maxListIDs], ",")).ids("ResourceIds", true); err != nil {
		t.Fatalf("%d IDs: %v", maxListIDs, err)
	}
	_, err := paramsOf("ResourceIds", strings.Join(many, ",")).ids("ResourceIds", true)
	wantParamErr(t, err, "InvalidParameter", "ResourceIds")
}

func TestParamsID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		value   *string
		want    int64
		code    string // for id (required)
		optWant int64
		optCode string // for optID
	}{
		{desc: "positive", value: ptr("42"), want: 42, optWant: 42},
		{desc: "padded", value: ptr(" 42 "), want: 42, optWant: 42},
		{desc: "absent", value: nil, code: "MissingParameter"},
		{desc: "empty", value: ptr(""), code: "MissingParameter"},
		{desc: "zero", value: ptr("0"), code: "InvalidParameter", optCode: "InvalidParameter"},
		{desc: "negative", value: ptr("-5"), code: "InvalidParameter", optCode: "InvalidParameter"},
		{desc: "garbage", value: ptr("5a"), code: "InvalidParameter", optCode: "InvalidParameter"},
		{desc: "list", value: ptr("1,2"), code: "InvalidParameter", optCode: "InvalidParameter"},
		{desc: "overflow", value: ptr("99999999999999999999"), code: "InvalidParameter", optCode: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := paramsOf()
			if tc.value != nil {
				p = paramsOf("JobId", *tc.value)
			}
			got, err := p.id("JobId")
			wantParamErr(t, err, tc.code, "JobId")
			if tc.code == "" && got != tc.want {
				t.Errorf("id = %d, want %d", got, tc.want)
			}
			got, err = p.optID("JobId")
			wantParamErr(t, err, tc.optCode, "JobId")
			if tc.optCode == "" && got != tc.optWant {
				t.Errorf("optID = %d, want %d", got, tc.optWant)
			}
		})
	}
}

func TestParamsPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		kv         []string
		page, size int
		code, name string
	}{
		{desc: "defaults", page: 1, size: 50},
		{desc: "given", kv: []string{"CurrentPage", "3", "ShowSize", "20"}, page: 3, size: 20},
		{desc: "smallest", kv: []string{"CurrentPage", "1", "ShowSize", "1"}, page: 1, size: 1},
		{desc: "largest", kv: []string{"CurrentPage", "1000000000", "ShowSize", "1000"}, page: 1e9, size: 1000},
		{desc: "page 0", kv: []string{"CurrentPage", "0"}, code: "InvalidParameter", name: "CurrentPage"},
		{desc: "negative page", kv: []string{"CurrentPage", "-1"}, code: "InvalidParameter", name: "CurrentPage"},
		{desc: "page too large", kv: []string{"CurrentPage", "1000000001"}, code: "InvalidParameter", name: "1000000000"},
		{desc: "page not a number", kv: []string{"CurrentPage", "two"}, code: "InvalidParameter", name: "CurrentPage"},
		{desc: "size 0", kv: []string{"ShowSize", "0"}, code: "InvalidParameter", name: "ShowSize"},
		{desc: "size too large", kv: []string{"ShowSize", "1001"}, code: "InvalidParameter", name: "ShowSize"},
		{desc: "size negative", kv: []string{"ShowSize", "-10"}, code: "InvalidParameter", name: "ShowSize"},
		{desc: "size not a number", kv: []string{"ShowSize", "1.5"}, code: "InvalidParameter", name: "ShowSize"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			page, size, err := paramsOf(tc.kv...).page(50)
			wantParamErr(t, err, tc.code, tc.name)
			if tc.code == "" && (page != tc.page || size != tc.size) {
				t.Errorf("page, size = %d, %d; want %d, %d", page, size, tc.page, tc.size)
			}
		})
	}
}

func TestParamsBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		value *string
		want  bool
		code  string
	}{
		{desc: "absent", value: nil, want: false},
		{desc: "empty", value: ptr(""), want: false},
		{desc: "true", value: ptr("true"), want: true},
		{desc: "TRUE", value: ptr("TRUE"), want: true},
		{desc: "1", value: ptr("1"), want: true},
		{desc: "false", value: ptr("false"), want: false},
		{desc: "False", value: ptr("False"), want: false},
		{desc: "0", value: ptr("0"), want: false},
		{desc: "padded", value: ptr(" true "), want: true},
		{desc: "yes", value: ptr("yes"), code: "InvalidParameter"},
		{desc: "2", value: ptr("2"), code: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := paramsOf()
			if tc.value != nil {
				p = paramsOf("CertFilter", *tc.value)
			}
			got, err := p.bool("CertFilter")
			wantParamErr(t, err, tc.code, "CertFilter")
			if tc.code == "" && got != tc.want {
				t.Errorf("bool = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParamsJSONObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		value string
		want  string
		code  string
	}{
		{desc: "absent", value: "", want: "{}"},
		{desc: "compacted", value: "{ \"Url\" : \"https://x.test\",\n \"TimeoutSeconds\": 5 }", want: `{"Url":"https://x.test","TimeoutSeconds":5}`},
		{desc: "empty object", value: "{}", want: "{}"},
		{desc: "nested", value: `{"a":{"b":[1,2]}}`, want: `{"a":{"b":[1,2]}}`},
		{desc: "array", value: "[1]", code: "InvalidParameter"},
		{desc: "null", value: "null", code: "InvalidParameter"},
		{desc: "number", value: "1", code: "InvalidParameter"},
		{desc: "string", value: `"x"`, code: "InvalidParameter"},
		{desc: "unterminated", value: `{"a":1`, code: "InvalidParameter"},
		{desc: "trailing data", value: `{"a":1} {}`, code: "InvalidParameter"},
		{desc: "not JSON", value: "a=1", code: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := paramsOf("Config", tc.value).jsonObject("Config")
			wantParamErr(t, err, tc.code, "Config")
			if tc.code == "" && got != tc.want {
				t.Errorf("jsonObject = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParamsText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		value string
		want  string
		code  string
	}{
		{desc: "trimmed", value: "  web  ", want: "web"},
		{desc: "128 ASCII characters", value: strings.Repeat("n", 128), want: strings.Repeat("n", 128)},
		{desc: "128 multi-byte characters", value: strings.Repeat("é", 128), want: strings.Repeat("é", 128)},
		{desc: "129 characters", value: strings.Repeat("n", 129), code: "InvalidParameter"},
		{desc: "129 multi-byte characters", value: strings.Repeat("證", 129), code: "InvalidParameter"},
		{desc: "invalid UTF-8", value: "a\xffb", code: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := paramsOf("Name", tc.value).text("Name", 128)
			wantParamErr(t, err, tc.code, "Name")
			if tc.code == "" && got != tc.want {
				t.Errorf("text = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParamsRequired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		value *string
		want  string
		code  string
	}{
		{desc: "present", value: ptr("x"), want: "x"},
		{desc: "absent", value: nil, code: "MissingParameter"},
		{desc: "empty", value: ptr(""), code: "MissingParameter"},
		{desc: "blank", value: ptr(" \t"), code: "MissingParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := paramsOf()
			if tc.value != nil {
				p = paramsOf("Name", *tc.value)
			}
			got, err := p.required("Name")
			wantParamErr(t, err, tc.code, "Name is mandatory for this action.")
			if tc.code == "" && got != tc.want {
				t.Errorf("required = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParamsEpochMS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		value string
		want  time.Time
		code  string
	}{
		{desc: "absent", value: ""},
		{desc: "zero means unset", value: "0"},
		{desc: "milliseconds", value: "1700000000123", want: time.UnixMilli(1700000000123)},
		{desc: "negative", value: "-1", code: "InvalidParameter"},
		{desc: "not a number", value: "2024-01-01", code: "InvalidParameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, err := paramsOf("ScheduleTime", tc.value).epochMS("ScheduleTime")
			wantParamErr(t, err, tc.code, "ScheduleTime")
			if tc.code == "" && !got.Equal(tc.want) {
				t.Errorf("epochMS = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

package deploytest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
)

// CheckSchema fails t when a product's Description and its Config struct
// (config, a zero value of it) disagree: a key described but absent from the
// struct (DecodeConfig would refuse it), a struct field not described
// (users could not set it), or a type that does not fit. Embedded structs
// count as their fields, as encoding/json flattens them.
func CheckSchema(t testing.TB, fields []deploy.Field, config any) {
	t.Helper()
	got := map[string]reflect.Type{}
	collect(reflect.TypeOf(config), got)
	for _, f := range fields {
		typ, ok := got[f.Name]
		if !ok {
			t.Errorf("key %s is described but the Config struct has no such field", f.Name)
			continue
		}
		if !fits(f.Type, typ) {
			t.Errorf("key %s is described as %s but the field is a Go %s", f.Name, f.Type, typ)
		}
		delete(got, f.Name)
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t.Errorf("Config field %s is not described", n)
	}
}

func collect(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			collect(f.Type, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag := f.Tag.Get("json"); tag != "" {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		into[name] = f.Type
	}
}

func fits(want deploy.Type, t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch want {
	case deploy.TypeString:
		return t.Kind() == reflect.String
	case deploy.TypeInteger:
		switch t.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint16, reflect.Uint32:
			return true
		}
	case deploy.TypeBoolean:
		return t.Kind() == reflect.Bool
	case deploy.TypeStringList:
		return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String
	case deploy.TypeObject:
		return t.Kind() == reflect.Map || t.Kind() == reflect.Struct || t == reflect.TypeOf([]byte(nil))
	}
	return false
}

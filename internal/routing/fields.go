package routing

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// unknownFieldRE matches yaml.v3's message for a field the type lacks,
// which names the Go type ("field branchs not found in type
// routing.matchSpec").
var unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)

// unknownField rewrites the decoder's unknown-field message in the
// manifest's words: the field, what was probably meant, the valid fields.
// Other messages are returned unchanged.
func unknownField(msg string, fields map[string][]string) string {
	sm := unknownFieldRE.FindStringSubmatch(msg)
	if sm == nil {
		return msg
	}
	valid, ok := fields[sm[2]]
	if !ok {
		return fmt.Sprintf("unknown field %q", sm[1])
	}
	out := fmt.Sprintf("unknown field %q", sm[1])
	if s := Suggest(sm[1], valid); s != "" {
		out += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return out + "; valid here: " + strings.Join(valid, ", ")
}

// fieldNames maps every struct type reachable from t (by its Go name, as
// the decoder reports it) to its YAML field names, sorted.
func fieldNames(t reflect.Type) map[string][]string {
	out := map[string][]string{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = nil // before recursing: types may nest themselves
		names := structFields(t, walk)
		sort.Strings(names)
		out[t.String()] = names
	}
	walk(t)
	return out
}

// structFields lists the YAML names of t's fields (inline ones flattened)
// and walks each field's type.
func structFields(t reflect.Type, walk func(reflect.Type)) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				names = append(names, structFields(ft, walk)...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
		walk(f.Type)
	}
	return names
}

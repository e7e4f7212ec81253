package routing

import (
	"reflect"
	"testing"
)

type inlineOuter struct {
	In      inlineInner `yaml:",inline"`
	Ptr     *inlinePtr  `yaml:",inline"`
	Name    string      `yaml:"name"`
	Other   string      `yaml:"-"`
	MaxBody int         `yaml:"maxBody"`
	Plain   string
}

type inlineInner struct {
	B string `yaml:"b"`
}

type inlinePtr struct {
	C string `yaml:"c"`
}

// TestFieldNamesInline: inline fields, by value or by pointer, are
// flattened into the enclosing type's names (no manifest type has one
// today; yaml.v3 decodes them so); a tag's name is kept as written, an
// untagged field is its name in lower case, as yaml.v3 has it.
func TestFieldNamesInline(t *testing.T) {
	got := fieldNames(reflect.TypeOf(inlineOuter{}))[reflect.TypeOf(inlineOuter{}).String()]
	if want := []string{"b", "c", "maxBody", "name", "plain"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
}

package routing

import (
	"encoding/json"
	"errors"
	"testing"
)

// differentialBodies are bodies a partial decoder can read differently from
// a full decode: escaped, empty and non-ASCII keys, keys given twice with
// values of different kinds, nesting, whitespace everywhere, arrays and
// bodies that are not objects or not JSON at all.
var differentialBodies = []string{
	`{}`,
	` { } `,
	"\t{\r\n\"a\"\n:\t{ \"b\" : 1 } ,\"c\":2}\n",
	`{"a":{"b":"x"},"a":{"c":"y"}}`,
	`{"a":{"b":"x"},"a":7}`,
	`{"a":7,"a":{"b":"x"}}`,
	`{"a":{"b":1,"b":{"c":2}}}`,
	`{"\u0061":{"\u0062":"escaped"}}`,
	`{"a":{"b":1},"\u0061":{"c":2}}`,
	`{"a\"":{"b":1},"a":{"b":2},"a\\":{"b":3}}`,
	`{"\\":1,"":{"b":2},"a":{"":3,"b":"}"}}`,
	`{"a/b":1,"a\/b":2,"a":{"b":"\"]}\\"}}`,
	`{"\ud83d\ude00":1,"é":{"b":2},"a":{"b":"é\u00e9"}}`,
	"{\"\x80\":1,\"a\xff\":2,\"a\":{\"b\":\"\xfe\"}}",
	`{"a":[{"b":1},{"b":2}],"b":[]}`,
	`{"a":{"b":[1,[2,{"c":"]}"}]]}}`,
	`{"a":{"b":{"c":{"d":{"e":null}}}},"z":true}`,
	`{"a":null}`,
	`{"a":"b"}`,
	`{"a":{"b":-1.5e-3}}`,
	`{"repository":{"owner":{"login":"o","id":1}},"dup":1,"dup":{"x":2},"k":{"x":[true]}}`,
	`[{"a":{"b":1}}]`,
	`"{\"a\":1}"`,
	`12`,
	`null`,
	`true`,
	`{"a":1}x`,
	`{"a":1}{"b":2}`,
	`{"a":1,}`,
	`{"a" 1}`,
	`{"a":{"b":1}`,
	`{"a":"unterminated}`,
	"{\"a\":1,\"b\":\"\x00\"}",
	``,
	`   `,
}

// differentialPaths are the binding value sets the bodies are read with.
var differentialPaths = [][]string{
	{"$(body.a.b)"},
	{"$(body.a)", "$(body.a.b)"},
	{"$(body.a.b.c)", "$(body.z)"},
	{"$(body.a.b.c.d.e)"},
	{"$(body.repository.owner)", "$(body.dup)", "$(body.k.x)"},
	{"$(body.missing)"},
}

// TestBodyPartDifferential checks the part of the body the bindings read,
// scanned from the payload or pruned from a parsed body, against a full
// decode of the whole payload: the same part when the payload is a JSON
// object, no part (the whole-body path) otherwise.
func TestBodyPartDifferential(t *testing.T) {
	for _, values := range differentialPaths {
		paths := bodyPathsOf(values...)
		if paths == nil {
			t.Fatalf("%q: no paths", values)
		}
		for _, body := range differentialBodies {
			var whole map[string]any
			decodes := json.Unmarshal([]byte(body), &whole) == nil && whole != nil
			want, _ := json.Marshal(paths.prune(whole))
			for name, st := range map[string]*routeState{"scanned": bodyState(t, body), "parsed": parsedState(t, body)} {
				part, ok := st.bodyPart(paths)
				if !decodes {
					// An empty body is {} once parsed, as Tekton Triggers has it.
					if ok && !(name == "parsed" && body == "") {
						t.Errorf("%q on %q (%s): part %v of a body that is not an object", values, body, name, part)
					}
					continue
				}
				got, _ := json.Marshal(part)
				if !ok || string(got) != string(want) {
					t.Errorf("%q on %q (%s): part %s, %v; full decode %s", values, body, name, got, ok, want)
				}
			}
		}
	}
}

// TestBodyForIsOnlyThePart checks that the resolver is handed the part the
// bindings read, re-encoded, and not the whole payload: that is what
// spares it parsing the whole body for each target.
func TestBodyForIsOnlyThePart(t *testing.T) {
	paths := bodyPathsOf("$(body.repository.owner.login)", "$(body.dup)")
	var whole map[string]any
	if err := json.Unmarshal([]byte(partBody), &whole); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(paths.prune(whole))
	if len(want) >= len(partBody)/2 {
		t.Fatalf("the part %s is not much smaller than the body", want)
	}
	for name, st := range map[string]*routeState{"scanned": bodyState(t, partBody), "parsed": parsedState(t, partBody)} {
		if got := st.bodyFor(paths); string(got) != string(want) {
			t.Errorf("%s: resolver gets %s, want only %s", name, got, want)
		}
		// And again, from what the first call left in the state.
		if got := st.bodyFor(paths); string(got) != string(want) {
			t.Errorf("%s, second call: resolver gets %s, want only %s", name, got, want)
		}
	}
	// Without paths, or without a body, the payload itself.
	st := bodyState(t, partBody)
	if got := st.bodyFor(nil); string(got) != partBody {
		t.Errorf("no paths: resolver gets %.40s..., want the whole payload", got)
	}
	for name, st := range map[string]*routeState{"scanned": bodyState(t, ""), "parsed": parsedState(t, "")} {
		if got := st.bodyFor(paths); len(got) != 0 {
			t.Errorf("%s: empty body: resolver gets %q, want nothing", name, got)
		}
	}
}

// TestUnreadKeysSkippedWithoutDecoding checks that a plain key no path
// reads is skipped without decoding it (no allocation): only keys with an
// escape or a non-ASCII byte need json.Unmarshal to be compared.
func TestUnreadKeysSkippedWithoutDecoding(t *testing.T) {
	paths := bodyPathsOf("$(body.repository.owner)")
	for _, key := range []string{`"head_commit"`, `"x-y_z 0"`, `""`} {
		var sub *bodyPaths
		quoted := []byte(key)
		if n := testing.AllocsPerRun(100, func() { _, sub, _ = paths.field(quoted) }); n != 0 || sub != nil {
			t.Errorf("key %s: %v allocations, paths %v; want 0, none", key, n, sub)
		}
	}
	for key, want := range map[string]string{`"repository"`: "repository", `"re\u0070ository"`: "repository", `"rep\/ository"`: "rep/ository"} {
		name, _, err := paths.field([]byte(key))
		if err != nil || name != want {
			t.Errorf("key %s: %q, %v; want %q", key, name, err, want)
		}
	}
}

// TestEachFieldPastItsContract checks the scanner's safety net: it is only
// handed objects json.Valid accepted, but if that check ever changes, a
// truncated or malformed object must give errScan (the caller then decodes
// the whole body and reports its error), never a panic or a part.
func TestEachFieldPastItsContract(t *testing.T) {
	var bad []string
	for _, obj := range []string{`{"a" : 1 , "b":{"c":[1,"]"]},"d":"x\"y", "e":true}`, "{ \"a\":{}\n}", `{"a":"b"}`, `{"a":{"b":{}},"c":{}}`} {
		for n := 1; n < len(obj); n++ {
			bad = append(bad, obj[:n])
		}
	}
	bad = append(bad, `{"a":}`, `{"a":,"b":1}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1,}`, `{,}`, `{1:2}`, `{"a":1]`)
	for _, obj := range bad {
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = errors.New("panic")
				}
			}()
			return eachField([]byte(obj), func(key, val []byte) error { return nil })
		}()
		if !errors.Is(err, errScan) {
			t.Errorf("eachField(%q) = %v, want errScan", obj, err)
		}
	}
}

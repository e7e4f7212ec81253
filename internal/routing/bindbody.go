package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	triggersv1 "github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
)

// bodyPaths is the part of the payload a trigger's bindings (or a `when`
// condition) read, when every expression reads it by plain dotted paths.
// Only that part is decoded, and the resolver gets it re-encoded instead
// of parsing the whole payload again for each target: a path resolves to
// the same value, or fails the same way, in the part as in the whole.
type bodyPaths struct {
	whole  bool // the binding reads this value itself, not only some fields
	fields map[string]*bodyPaths
}

// plainPath is an expression the pruned body answers as the whole one
// does: dotted field names, no wildcard, index, filter, union or recursion.
var plainPath = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// bodyPathsOf returns the body paths the values' $(...) expressions read,
// found as Tekton Triggers finds them; nil when some expression is not a
// plain path or reads the whole body, and the resolver must get it all.
func bodyPathsOf(values ...string) *bodyPaths {
	root := &bodyPaths{}
	for _, v := range values {
		pieces := strings.Split(v, "$(")
		for _, p := range pieces[1:] {
			end := strings.IndexByte(p, ')')
			if end < 0 {
				continue // not an expression to Tekton either
			}
			expr := p[:end]
			if !plainPath.MatchString(expr) {
				return nil
			}
			segs := strings.Split(expr, ".")
			if segs[0] != "body" {
				continue
			}
			if len(segs) == 1 {
				return nil
			}
			root.add(segs[1:])
		}
	}
	return root
}

func (p *bodyPaths) add(segs []string) {
	for _, s := range segs {
		if p.whole {
			return
		}
		if p.fields == nil {
			p.fields = map[string]*bodyPaths{}
		}
		next := p.fields[s]
		if next == nil {
			next = &bodyPaths{}
			p.fields[s] = next
		}
		p = next
	}
	p.whole, p.fields = true, nil
}

// prune keeps of v only what the paths read; a value that is not an
// object is kept whole, so a path through it fails as it would.
func (p *bodyPaths) prune(v any) any {
	m, ok := v.(map[string]any)
	if p.whole || !ok {
		return v
	}
	out := make(map[string]any, len(p.fields))
	for k, sub := range p.fields {
		if x, ok := m[k]; ok {
			out[k] = sub.prune(x)
		}
	}
	return out
}

// bodyFor returns the payload to hand the binding resolver for bindings
// that read paths: the part they read when that is known and the body is
// a JSON object, the raw payload otherwise.
func (st *routeState) bodyFor(paths *bodyPaths) []byte {
	data := st.in.Event.Data()
	if paths == nil || len(data) == 0 {
		return data
	}
	part, ok := st.bodyPart(paths)
	if !ok {
		return data
	}
	b, err := json.Marshal(part)
	if err != nil {
		return data
	}
	return b
}

// bodyPart returns the part of the body the paths read, decoding only
// that part; false when the body is empty, not valid JSON or not an
// object, where the caller takes the whole-body path and its errors.
func (st *routeState) bodyPart(paths *bodyPaths) (map[string]any, bool) {
	if st.bodyParsed {
		if st.bodyErr != nil || st.body == nil {
			return nil, false
		}
		part, _ := paths.prune(st.body).(map[string]any)
		return part, part != nil
	}
	if !st.objectChecked {
		st.objectChecked = true
		// Valid as a whole, as a full decode would require (scanned here
		// unless the caller knows it is); the top level scanned once for
		// every binding and condition of the event.
		if data := st.in.Event.Data(); st.in.DataIsJSON || json.Valid(data) {
			if t := bytes.TrimLeft(data, jsonSpace); len(t) > 0 && t[0] == '{' {
				st.fields = make([]rawField, 0, 32)
				st.objectOK = eachField(t, func(key, val []byte) error {
					st.fields = append(st.fields, rawField{key, val})
					return nil
				}) == nil
			}
		}
	}
	if !st.objectOK {
		return nil, false
	}
	out := make(map[string]any, len(paths.fields))
	for _, f := range st.fields {
		if err := paths.pickField(out, f.key, f.val); err != nil {
			return nil, false
		}
	}
	return out, true
}

// rawField is one field of a JSON object: its quoted key and raw value.
type rawField struct{ key, val []byte }

const jsonSpace = " \t\r\n"

// pick decodes of raw, a valid JSON value, what the paths read: what
// prune keeps of the whole decoded value.
func (p *bodyPaths) pick(raw []byte) (any, error) {
	if p.whole || len(raw) == 0 || raw[0] != '{' {
		var v any
		err := json.Unmarshal(raw, &v)
		return v, err
	}
	out := make(map[string]any, len(p.fields))
	err := eachField(raw, func(key, val []byte) error { return p.pickField(out, key, val) })
	return out, err
}

// pickField adds to out what the paths read of one field, if any.
func (p *bodyPaths) pickField(out map[string]any, key, val []byte) error {
	name, sub, err := p.field(key)
	if sub == nil || err != nil {
		return err
	}
	// A key given twice keeps its last value, as a full decode does.
	v, err := sub.pick(val)
	out[name] = v
	return err
}

// field returns a quoted key, decoded, and the paths under it; nil paths
// when none reads it.
func (p *bodyPaths) field(quoted []byte) (string, *bodyPaths, error) {
	inner := quoted[1 : len(quoted)-1]
	if !slices.ContainsFunc(inner, func(c byte) bool { return c == '\\' || c >= utf8.RuneSelf }) {
		sub := p.fields[string(inner)]
		if sub == nil {
			return "", nil, nil
		}
		return string(inner), sub, nil
	}
	var k string
	if err := json.Unmarshal(quoted, &k); err != nil {
		return "", nil, err
	}
	return k, p.fields[k], nil
}

// errScan is what the scanner returns past the end of a value json.Valid
// accepted: it cannot happen, and the caller decodes the whole body.
var errScan = errors.New("body scan ran past the value")

// eachField calls fn with each quoted key and raw value of obj, a valid
// JSON object, in order.
func eachField(obj []byte, fn func(key, val []byte) error) error {
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) && obj[i] == '"' {
		kEnd := skipString(obj, i)
		colon := skipSpace(obj, kEnd)
		if colon >= len(obj) || obj[colon] != ':' {
			return errScan
		}
		v := skipSpace(obj, colon+1)
		vEnd := skipValue(obj, v)
		if vEnd > len(obj) || vEnd <= v {
			return errScan
		}
		if err := fn(obj[i:kEnd], obj[v:vEnd]); err != nil {
			return err
		}
		i = skipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == '}' {
			return nil
		}
		if i >= len(obj) || obj[i] != ',' {
			return errScan
		}
		i = skipSpace(obj, i+1)
	}
	return errScan
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i]: at the
// first quote not escaped by an odd run of backslashes.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		end := j + k
		n := 0
		for end-1-n > i && b[end-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return end + 1
		}
		j = end + 1
	}
	return len(b) + 1
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b) + 1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b) + 1
	}
	j := i
	for j < len(b) && strings.IndexByte(",}]"+jsonSpace, b[j]) < 0 {
		j++
	}
	return j
}

func bindingValues(params []triggersv1.Param) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.Value
	}
	return out
}

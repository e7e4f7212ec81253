package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/ingest"
)

// TestNormalizeEverySample runs `router normalize --provider <kind>` on
// every provider sample under test/testdata/<kind>/, with the headers in
// the sample's .headers file, and compares the events (without their data)
// with the golden file the provider's own test checks,
// internal/ingest/testdata/golden/<kind>-<sample>.json. A ping has no
// golden; a handshake's golden is [] (no events).
func TestNormalizeEverySample(t *testing.T) {
	dirs, err := filepath.Glob("../../test/testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range ingest.Kinds() {
		kinds[k] = true
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		kind := filepath.Base(dir)
		if !kinds[kind] {
			continue // not a provider's samples
		}
		samples, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(samples) == 0 {
			t.Errorf("%s: no samples", dir)
		}
		for _, sample := range samples {
			name := strings.TrimSuffix(filepath.Base(sample), ".json")
			seen[kind] = true
			t.Run(kind+"/"+name, func(t *testing.T) {
				args := []string{"normalize", "--provider", kind, "--body", sample}
				hf, err := os.Open(strings.TrimSuffix(sample, ".json") + ".headers")
				if err != nil {
					t.Fatalf("every sample needs its .headers file: %v", err)
				}
				defer hf.Close()
				sc := bufio.NewScanner(hf)
				for sc.Scan() {
					if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
						args = append(args, "-H", line)
					}
				}
				code, out, errOut := runCmd(t, "", args...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				golden, err := os.ReadFile(filepath.Join("../../internal/ingest/testdata/golden", kind+"-"+name+".json"))
				if os.IsNotExist(err) {
					if strings.TrimSpace(out) != `{"ping": true}` {
						t.Fatalf("no golden file for a sample that is not a ping:\n%s", out)
					}
					return
				} else if err != nil {
					t.Fatal(err)
				}
				if got, want := withoutData(t, out), withoutData(t, string(golden)); !reflect.DeepEqual(got, want) {
					t.Fatalf("normalize differs from the golden file\n got: %v\nwant: %v", got, want)
				}
			})
		}
	}
	for k := range kinds {
		if !seen[k] {
			t.Errorf("provider %s has no samples under test/testdata/%s", k, k)
		}
	}
}

// withoutData decodes normalize output or a golden file as a list of
// events without their data. A handshake's reply counts as no events.
func withoutData(t *testing.T, s string) []map[string]any {
	t.Helper()
	var v any
	if err := json.NewDecoder(bytes.NewReader([]byte(s))).Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case map[string]any:
		if _, ok := x["reply"]; ok {
			return []map[string]any{}
		}
		list = []any{x}
	}
	out := []map[string]any{}
	for _, e := range list {
		m, _ := e.(map[string]any)
		delete(m, "data")
		delete(m, "data_base64")
		out = append(out, m)
	}
	return out
}

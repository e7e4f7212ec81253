package routing

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSecretLinesAndWhere: a secret listing several values (a rotation)
// reports each one's line, comments and blanks counted; an error names the
// variable or the file the secret is read from, never its value.
func TestSecretLinesAndWhere(t *testing.T) {
	env := map[string]string{"ROTATING": "new\n# old one below, until Friday\n\nold\r\n", "EMPTY": "# none yet\n"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	secrets, lines, err := secretRef{Env: "ROTATING"}.resolveLines(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{string(secrets[0]), string(secrets[1])}; len(secrets) != 2 || !reflect.DeepEqual(got, []string{"new", "old"}) || !reflect.DeepEqual(lines, []int{1, 4}) {
		t.Errorf("secrets %q on lines %v, want new, old on 1, 4", secrets, lines)
	}
	if _, _, err := (secretRef{Env: "EMPTY"}).resolveLines(lookup); err == nil || !strings.Contains(err.Error(), "secret environment variable EMPTY lists no secret") {
		t.Errorf("env secret of comments only: %v", err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("# none yet\n# still none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (secretRef{File: file}).resolveLines(lookup); err == nil || !strings.Contains(err.Error(), "secret file "+file+" lists no secret") {
		t.Errorf("file secret of comments only: %v", err)
	}
}

// TestSuggestFirstOfEquals: of candidates equally close, the first.
func TestSuggestFirstOfEquals(t *testing.T) {
	if got := Suggest("deploi", []string{"deploy", "deplox"}); got != "deploy" {
		t.Errorf("Suggest = %q, want deploy", got)
	}
	if got := Suggest("deploi", []string{"deplox", "deploy"}); got != "deplox" {
		t.Errorf("Suggest = %q, want deplox", got)
	}
}

// TestSecretLineAndAccepted: the i-th accepted secret's line, 1-based,
// other indexes unchanged; the accepted secrets are the list, else the
// single secret, else none.
func TestSecretLineAndAccepted(t *testing.T) {
	s := &Source{secretLines: []int{1, 4}}
	for i, want := range map[int]int{0: 0, 1: 1, 2: 4, 3: 3} {
		if got := s.SecretLine(i); got != want {
			t.Errorf("SecretLine(%d) = %d, want %d", i, got, want)
		}
	}
	list := [][]byte{[]byte("new"), []byte("old")}
	for _, tc := range []struct {
		src  *Source
		want [][]byte
	}{
		{&Source{Secrets: list, Secret: []byte("new")}, list},
		{&Source{Secret: []byte("only")}, [][]byte{[]byte("only")}},
		{&Source{}, nil},
	} {
		if got := tc.src.AcceptedSecrets(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AcceptedSecrets = %q, want %q", got, tc.want)
		}
	}
}

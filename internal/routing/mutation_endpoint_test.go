package routing

import "testing"

// TestMatchTokenFirstListed: a token listed twice (under two names during
// a handover) is reported as its first line, whatever the order of the
// comparisons, which all run.
func TestMatchTokenFirstListed(t *testing.T) {
	hashes, err := parseTokenHashes([]byte(tokenLine("shared", "ci-old") + tokenLine("other", "x") + tokenLine("shared", "ci-new")))
	if err != nil {
		t.Fatal(err)
	}
	e := &Endpoint{Tokens: hashes}
	if name, line, ok := e.MatchToken("shared"); !ok || name != "ci-old" || line != 1 {
		t.Errorf("MatchToken = %q, %d, %v; want ci-old, 1, true", name, line, ok)
	}
}

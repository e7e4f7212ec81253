package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestMatchTokenFirstOfDuplicates: a token listed twice (during a rotation,
// under its old and new label) is named by its first line, whatever the
// order the hashes are compared in.
func TestMatchTokenFirstOfDuplicates(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	line := "sha256:" + hex.EncodeToString(sum[:])
	hashes, err := parseTokenHashes([]byte(line + " old\n" + line + " new\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Endpoint{Tokens: hashes}
	name, n, ok := e.MatchToken("s3cret")
	if !ok || name != "old" || n != 1 {
		t.Fatalf("MatchToken = %q, line %d, %v; want old, line 1", name, n, ok)
	}
}

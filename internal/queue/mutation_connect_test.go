package queue

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"strings"
	"testing"
)

// Credentials in the URL and in any kind of file are refused, before a
// connection or a file read is attempted.
func TestConnectRefusesURLAndFileCredentials(t *testing.T) {
	for name, auth := range map[string]ClientAuth{
		"creds file": {CredsFile: "/nonexistent/router.creds"},
		"nkey file":  {NkeyFile: "/nonexistent/router.nk"},
		"user file":  {UserFile: "/nonexistent/user"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Connect("nats://router:secret@127.0.0.1:1", auth)
			if err == nil || !strings.Contains(err.Error(), "credentials both in the url and in a file") {
				t.Fatalf("Connect = %v, want the refusal of two credentials", err)
			}
		})
	}
}

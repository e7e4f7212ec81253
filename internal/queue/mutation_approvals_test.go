package queue

// Tests added for mutants no queue test ran (docs/testing.md, "Mutation
// testing"): HeldFor, what an /approve comment on a pull request decides on.

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestHeldForPullRequest(t *testing.T) {
	ctx := context.Background()
	q := newQueue(t)
	if got, err := q.HeldFor(ctx, "github", "acme/widgets", "7"); err != nil || got != nil {
		t.Fatalf("before any hold (no bucket): %v, %v; want nothing", got, err)
	}
	pr := func(id, repo, number string) {
		t.Helper()
		a := held("github", id, "prod")
		a.Event.SetExtension("repository", repo)
		a.Event.SetExtension("pullrequest", number)
		if err := q.Publish(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	pr("pr7-a", "acme/widgets", "7")
	pr("pr7-b", "acme/widgets", "7")
	pr("pr8", "acme/widgets", "8")
	pr("other-repo", "acme/gadgets", "7")
	pr("decided", "acme/widgets", "7")
	if _, err := q.Decide(ctx, Decision{Source: "github", EventID: "decided", By: "endpoint:people alice", Reason: "no"}); err != nil {
		t.Fatal(err)
	}
	other := held("gitlab", "elsewhere", "prod")
	other.Event.SetExtension("pullrequest", "7")
	if err := q.Publish(ctx, other); err != nil {
		t.Fatal(err)
	}

	got, err := q.HeldFor(ctx, "github", "acme/widgets", "7")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range got {
		ids = append(ids, a.Event.ID())
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"pr7-a", "pr7-b"}) {
		t.Errorf("held for acme/widgets#7: %v, want pr7-a and pr7-b (awaiting approval, this source, repository and number)", ids)
	}
	if got, err := q.HeldFor(ctx, "git.hub", "acme/widgets", "7"); err != nil || got != nil {
		t.Errorf("a source that is no key token: %v, %v; want nothing", got, err)
	}
}

// keyToken's character classes, at their edges.
func TestKeyTokenEdges(t *testing.T) {
	for _, name := range []string{"a", "z", "A", "Z", "0", "9", "-", "_", "github-1_x"} {
		if !keyToken(name) {
			t.Errorf("keyToken(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"", "`", "{", "@", "[", "/", ":", ".", "a.b", "a*", "é"} {
		if keyToken(name) {
			t.Errorf("keyToken(%q) = true, want false", name)
		}
	}
}

// The embedded server is named "switchyard" unless told otherwise.
func TestEmbeddedServerName(t *testing.T) {
	for name, want := range map[string]string{"": "switchyard", "router-2": "router-2"} {
		e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		got := e.srv.Name()
		e.Shutdown()
		if got != want {
			t.Errorf("ServerName %q: server named %q, want %q", name, got, want)
		}
	}
}

// Listen ports from -1 (any free port) to 65535 are accepted, others not;
// Connect presents the server's own token.
func TestEmbeddedListenPortsAndToken(t *testing.T) {
	for port, ok := range map[string]bool{"-1": true, "-2": false, "65536": false} {
		e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:" + port})
		if ok != (err == nil) {
			t.Errorf("port %s: %v, want ok=%v", port, err, ok)
		}
		if err == nil {
			e.Shutdown()
		}
	}
	e, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Token: "s3cret-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect()
	if err != nil {
		t.Fatalf("Connect with the server's token: %v", err)
	}
	nc.Close()
}

// An event whose JSON data is not JSON is refused, not stored.
func TestPublishRefusesInvalidJSONData(t *testing.T) {
	q := newQueue(t)
	a := accepted("github", "bad-json", "api")
	a.Event.DataEncoded = []byte(`{"ref": "refs/heads/main"`)
	a.Event.DataBase64 = false
	err := q.Publish(context.Background(), a)
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish = %v, want a refusal that a retry cannot fix", err)
	}
}

package queue

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"errors"
	"strings"
	"testing"
	"time"
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

// A creds file is checked when the options are made (nats.go would only
// read it at connect); an existing one is accepted.
func TestCredsFileCheckedEarly(t *testing.T) {
	if _, err := (ClientAuth{CredsFile: "/nonexistent/router.creds"}).Options(); err == nil || !strings.Contains(err.Error(), "nats creds file") {
		t.Errorf("missing creds file: %v, want a creds file error", err)
	}
	if _, err := (ClientAuth{CredsFile: writeFile(t, "router.creds", "not read yet")}).Options(); err != nil {
		t.Errorf("existing creds file: %v", err)
	}
}

// User info that does not parse is reported as that, without the secret.
func TestCheckURLBadUserInfo(t *testing.T) {
	err := checkURL("nats://router:sec ret@127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "invalid user info") || strings.Contains(err.Error(), "sec ret") {
		t.Fatalf("checkURL = %v, want invalid user info, redacted", err)
	}
}

func TestRedactURLWithoutScheme(t *testing.T) {
	for in, want := range map[string]string{
		"://router:secret@127.0.0.1:4222": "://REDACTED@127.0.0.1:4222",
		"router:secret@127.0.0.1:4222":    "REDACTED@127.0.0.1:4222",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// redactError removes the URL's user info from an error's text, and
// returns an error without any unchanged (still wrapping its cause).
func TestRedactError(t *testing.T) {
	url := "nats://router:s3cret@127.0.0.1:1"
	leaky := errors.New("dial " + url + ": refused")
	if got := redactError(leaky, url).Error(); strings.Contains(got, "s3cret") || !strings.Contains(got, "REDACTED") {
		t.Errorf("redactError = %q, want the user info redacted", got)
	}
	clean := errors.New("no servers available")
	if got := redactError(clean, url); got != clean {
		t.Errorf("redactError of an error without user info = %v, want it unchanged", got)
	}
}

// ConsumerConfig's defaults fill what is unset and keep what is set.
func TestConsumerConfigDefaults(t *testing.T) {
	c, err := ConsumerConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.AckWait != 30*time.Second || c.BackoffBase != time.Second || c.BackoffMax != 5*time.Minute || c.MaxAttempts != 10 || c.Durable != "dispatch" {
		t.Errorf("defaults: %+v", c)
	}
	set := ConsumerConfig{AckWait: 7 * time.Second, BackoffBase: 2 * time.Second, BackoffMax: time.Minute, MaxAttempts: 3, Durable: "d"}
	c, err = set.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.AckWait != 7*time.Second || c.BackoffBase != 2*time.Second || c.BackoffMax != time.Minute || c.MaxAttempts != 3 || c.Durable != "d" {
		t.Errorf("set values not kept: %+v", c)
	}
}

// backoff's full jitter stays within [0, min(max, base*2^(attempt-1))]
// and reaches the upper half of that range (2000 draws per attempt: a
// ceiling off by a doubling either way fails with certainty in practice).
func TestBackoffRange(t *testing.T) {
	base, maxDelay := time.Second, time.Minute
	for attempt := 1; attempt <= 8; attempt++ {
		ceil := min(base<<(attempt-1), maxDelay)
		var top time.Duration
		for range 2000 {
			d := backoff(attempt, base, maxDelay)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, ceil)
			}
			top = max(top, d)
		}
		if top <= ceil/2 {
			t.Errorf("attempt %d: largest of 2000 delays %v, want some above %v", attempt, top, ceil/2)
		}
	}
}

// A reason of exactly 500 bytes is kept whole; one byte more is cut.
func TestTrimReasonEdge(t *testing.T) {
	if s := strings.Repeat("a", 500); trimReason(s) != s {
		t.Errorf("500 bytes: cut to %d", len(trimReason(s)))
	}
	if got := trimReason(strings.Repeat("a", 501)); got != strings.Repeat("a", 499)+"…" {
		t.Errorf("501 bytes: %d bytes, want 499 and an ellipsis", len(got))
	}
}

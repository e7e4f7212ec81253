package ingest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Normalized event types (DESIGN.md section 4).
const (
	TypeGitPush          = "dev.switchyard.git.push"
	TypeGitTag           = "dev.switchyard.git.tag"
	TypeGitBranchDeleted = "dev.switchyard.git.branch.deleted"
	TypeGitTagDeleted    = "dev.switchyard.git.tag.deleted"
	TypeGitPullRequest   = "dev.switchyard.git.pullrequest"
	TypeGitRelease       = "dev.switchyard.git.release"
	TypeImagePush        = "dev.switchyard.image.push"
	TypeImageDelete      = "dev.switchyard.image.delete"
)

// newEvent starts a normalized event with the attributes every provider
// sets. id falls back to a hash of the payload when the sender gave none,
// source to urn:switchyard:<provider> when the payload's URL is missing or
// not a URI reference (a sender's odd URL is no reason to refuse its event).
func newEvent(provider, id, source, typ string, payload []byte) event.Event {
	ev := event.New()
	if id == "" {
		id = contentID(payload)
	}
	ev.SetID(id)
	ev.SetSource("urn:switchyard:" + provider)
	setSourceURL(&ev, source)
	ev.SetType(typ)
	ev.SetExtension("provider", provider)
	return ev
}

// setSourceURL replaces the event's source with a URL from the payload
// when it is a valid URI reference, and keeps the current one otherwise.
func setSourceURL(ev *event.Event, u string) {
	if _, err := url.Parse(u); err == nil && u != "" {
		ev.SetSource(u)
	}
}

// setExt sets a string extension when it is not empty: extensions are
// present only where they apply.
func setExt(ev *event.Event, name, value string) {
	if value != "" {
		ev.SetExtension(name, value)
	}
}

// setTime sets the event time, in UTC, from a payload timestamp in the
// first of layouts it parses with; anything else leaves the time unset.
func setTime(ev *event.Event, s string, layouts ...string) {
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			ev.SetTime(t.UTC())
			return
		}
	}
}

// setRef sets subject and ref to a git ref ("refs/heads/main",
// "refs/tags/v1", "refs/pull/1/head"), and branch or tag when it names one.
func setRef(ev *event.Event, ref string) {
	ev.SetSubject(ref)
	ev.SetExtension("ref", ref)
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		ev.SetExtension("tag", tag)
	} else if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		ev.SetExtension("branch", branch)
	}
}

// applyRef sets the ref (setRef) and the git type from it: git.tag or
// git.push, or with deleted the deletion types. Other refs keep the type
// the event has.
func applyRef(ev *event.Event, ref string, deleted bool) {
	setRef(ev, ref)
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		ev.SetType(TypeGitTag)
		if deleted {
			ev.SetType(TypeGitTagDeleted)
		}
	case strings.HasPrefix(ref, "refs/heads/"):
		ev.SetType(TypeGitPush)
		if deleted {
			ev.SetType(TypeGitBranchDeleted)
		}
	}
}

// applyPush maps a push of ref from before to after (applyRef) and sets
// the revision: the new head, or the commit a deleted ref pointed at.
func applyPush(ev *event.Event, ref, before, after string, deleted bool) {
	applyRef(ev, ref, deleted)
	if deleted {
		after = before
	}
	setExt(ev, "revision", after)
}

// typedRef is the full ref of a create or delete event's ref and ref_type
// (GitHub's and Gitea's payloads), or "" when it is neither a branch nor a
// tag (a repository).
func typedRef(refType, ref string) string {
	switch refType {
	case "branch":
		return "refs/heads/" + ref
	case "tag":
		return "refs/tags/" + ref
	}
	return ""
}

// pullRequest is what a git host says of a pull (merge) request.
type pullRequest struct {
	action     string
	number     int
	ref        string // refs/pull/<n>/head; "" where the host names none (Bitbucket)
	branch     string // the base (target) branch
	headBranch string
	revision   string // the head commit
}

// apply makes ev a git.pullrequest with the request's extensions. The
// subject is the ref, or pull-requests/<n> without one.
func (pr pullRequest) apply(ev *event.Event) {
	ev.SetType(TypeGitPullRequest)
	setExt(ev, "action", pr.action)
	n := strconv.Itoa(pr.number)
	ev.SetExtension("pullrequest", n)
	if pr.ref != "" {
		setRef(ev, pr.ref)
	} else {
		ev.SetSubject("pull-requests/" + n)
	}
	setExt(ev, "branch", pr.branch)
	setExt(ev, "headbranch", pr.headBranch)
	setExt(ev, "revision", pr.revision)
}

// trimScheme is a registry address as an image reference names it: without
// http(s):// and a trailing slash.
func trimScheme(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://"), "/")
}

// newImageEvent is an image push (or, with typ, deletion) of
// host/path:tag@digest. repository is "<host>/<path>" as a user writes it
// in an image reference; the subject is the tag, or the digest without one.
func newImageEvent(provider, id, typ, host, path, tag, digest string, payload []byte) event.Event {
	host = trimScheme(host)
	repo := strings.Trim(path, "/")
	// Without a registry host (Nexus never sends one) the source is a URN,
	// not a URL with the first path segment posing as a host name.
	source := "urn:switchyard:" + provider + ":" + repo
	if host != "" {
		repo = host + "/" + repo
		source = "https://" + repo
	}
	ev := newEvent(provider, id, source, typ, payload)
	ev.SetExtension("repository", repo)
	setExt(&ev, "tag", tag)
	setExt(&ev, "digest", digest)
	if tag != "" {
		ev.SetSubject(tag)
	} else if digest != "" {
		ev.SetSubject(digest)
	}
	return ev
}

// setData makes the original payload, unchanged, the event's data. The
// payload is JSON: every provider has validated or decoded it before (a
// request of several events would otherwise be scanned once per event).
func setData(ev *event.Event, payload []byte) error {
	if err := ev.SetData(event.ApplicationJSON, payload); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// SetData marks any []byte as binary ("data_base64" when encoded); the
	// payload is JSON, so the event shows it as JSON, as the queue stores it.
	ev.DataBase64 = false
	return nil
}

// dataIsJSON reports whether ev, as a provider made it, has data known to
// be valid JSON: data setData attached (its callers validated or decoded
// the payload), or a CloudEvent's non-empty data declared
// application/json, which checkCloudEvent proved encodes as JSON. Routing
// then does not scan it a second time (routing.Input.DataIsJSON); the
// providers' fuzz tests and TestMalformedBodyIsNeverDataIsJSON hold every
// provider to it.
func dataIsJSON(ev *event.Event) bool {
	return len(ev.Data()) > 0 && ev.DataContentType() == event.ApplicationJSON && !ev.DataBase64
}

// requireJSON checks that the request is JSON, as sender documents it
// sends, and returns the body. A missing Content-Type is accepted only
// when lenient is set (senders that omit it, such as Docker Hub).
func requireJSON(req *Request, sender string, lenient bool) ([]byte, error) {
	ct := req.Header.Get("Content-Type")
	if ct != "" || !lenient {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fmt.Errorf("%w: Content-Type %q: %s sends application/json", ErrUnsupportedMediaType, ct, sender)
		}
	}
	if !json.Valid(req.Body) {
		return nil, fmt.Errorf("%w: body is not valid JSON", ErrMalformed)
	}
	return req.Body, nil
}

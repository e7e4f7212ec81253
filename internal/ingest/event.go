package ingest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"

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
	if _, err := url.Parse(source); err != nil || source == "" {
		source = "urn:switchyard:" + provider
	}
	ev.SetSource(source)
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

// applyRef sets subject, ref, branch or tag, and the git type from a ref
// ("refs/heads/main", "refs/tags/v1"). Other refs keep the type the event
// has. deleted selects the deletion types.
func applyRef(ev *event.Event, ref string, deleted bool) {
	ev.SetSubject(ref)
	ev.SetExtension("ref", ref)
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		ev.SetExtension("tag", strings.TrimPrefix(ref, "refs/tags/"))
		ev.SetType(TypeGitTag)
		if deleted {
			ev.SetType(TypeGitTagDeleted)
		}
	case strings.HasPrefix(ref, "refs/heads/"):
		ev.SetExtension("branch", strings.TrimPrefix(ref, "refs/heads/"))
		ev.SetType(TypeGitPush)
		if deleted {
			ev.SetType(TypeGitBranchDeleted)
		}
	}
}

// newImageEvent is an image push (or, with typ, deletion) of
// host/path:tag@digest. repository is "<host>/<path>" as a user writes it
// in an image reference; the subject is the tag, or the digest without one.
func newImageEvent(provider, id, typ, host, path, tag, digest string, payload []byte) event.Event {
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
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

// setData makes the original payload, unchanged, the event's data.
func setData(ev *event.Event, payload []byte) error {
	if err := ev.SetData(event.ApplicationJSON, payload); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// SetData marks any []byte as binary ("data_base64" when encoded); the
	// payload is JSON, so the event shows it as JSON, as the queue stores it.
	ev.DataBase64 = !json.Valid(payload)
	return nil
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

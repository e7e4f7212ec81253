package ingest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// The CNCF distribution registry's notifications
// (https://distribution.github.io/distribution/about/notifications/), also
// sent by registries built on it: an envelope of many events per request,
// Content-Type application/vnd.docker.distribution.events.v1+json,
// authenticated by the headers configured on the registry's endpoint
// (Authorization by default, compared in constant time). Each manifest
// push or delete becomes one event whose id is the registry's own event id;
// pulls, mounts and blob events are not builds and are dropped.
//
// The envelope is decoded with a small struct written here: importing
// distribution/v3/notifications would pull the registry's storage drivers
// and their dependencies into the router for four fields.

const distributionMediaType = "application/vnd.docker.distribution.events.v1+json"

// distributionMediaTypeV2 is what distribution v3 (registry:3) sends; the
// envelope's JSON is the same (notifications/event.go, EventsMediaType).
const distributionMediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"

func init() { Register(distributionProvider{}) }

type distributionProvider struct{}

var (
	_ Provider      = distributionProvider{}
	_ EarlyVerifier = distributionProvider{}
	_ Signer        = distributionProvider{}
)

func (distributionProvider) Kind() string { return "distribution" }

func (distributionProvider) Verify(req *Request, src *routing.Source) error {
	return verifyHeaderToken(req, src, "Authorization")
}

// VerifyBeforeBody checks the header token: it does not depend on the body.
func (p distributionProvider) VerifyBeforeBody(req *Request, src *routing.Source) error {
	return p.Verify(req, src)
}

type distributionEnvelope struct {
	Events []struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			URL        string `json:"url"`
			Tag        string `json:"tag"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
		Actor struct {
			Name string `json:"name"`
		} `json:"actor"`
	} `json:"events"`
}

// manifestMediaTypes are the targets that are images (or indexes).
var manifestMediaTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
}

func (distributionProvider) Normalize(req *Request) (Result, error) {
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != distributionMediaType && mt != distributionMediaTypeV2 && mt != "application/json") {
		return Result{}, fmt.Errorf("%w: Content-Type %q: the registry sends %s (v3: %s)", ErrUnsupportedMediaType, ct, distributionMediaType, distributionMediaTypeV2)
	}
	payload := req.Body
	var env distributionEnvelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return Result{}, fmt.Errorf("%w: notification envelope: %v", ErrMalformed, err)
	}
	var events []event.Event
	for _, e := range env.Events {
		var typ string
		switch e.Action {
		case "push":
			typ = TypeImagePush
		case "delete":
			typ = TypeImageDelete
		default:
			continue // pull, mount
		}
		// A manifest push carries its media type; a manifest delete only a
		// digest (and no blob delete has a tag or a manifest type either,
		// but both look alike: deletes of manifests are what registries
		// notify by default).
		if e.Action == "push" && !manifestMediaTypes[e.Target.MediaType] {
			continue // a blob (layer) push
		}
		if e.ID == "" || e.Target.Repository == "" {
			return Result{}, fmt.Errorf("%w: notification event without id or target.repository", ErrMalformed)
		}
		host := e.Request.Host
		if host == "" {
			if u, err := url.Parse(e.Target.URL); err == nil {
				host = u.Host
			}
		}
		ev := newImageEvent("distribution", e.ID, typ, host, e.Target.Repository, e.Target.Tag, e.Target.Digest, payload)
		setExt(&ev, "actor", e.Actor.Name)
		if err := setData(&ev, payload); err != nil {
			return Result{}, err
		}
		events = append(events, ev)
	}
	return Result{Events: events}, nil
}

// Sign sets the headers a registry endpoint sends.
func (distributionProvider) Sign(req *Request, _, _ string, secret []byte) {
	req.Header.Set("Content-Type", distributionMediaType)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(secret)))
}

package ingest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Quay (quay.io and Red Hat Quay) repository push notifications, webhook
// method (https://docs.projectquay.io/use_quay.html#repository-notifications):
// one notification lists every tag the push updated; each becomes its own
// image.push. Like Docker Hub, Quay's webhook cannot sign, so the source is
// authenticated by a secret token in the hook path.

func init() { Register(quayProvider{}) }

type quayProvider struct{ pathToken }

var (
	_ Provider      = quayProvider{}
	_ Signer        = quayProvider{}
	_ EarlyVerifier = quayProvider{}
)

func (quayProvider) Kind() string { return "quay" }

type quayPayload struct {
	Repository  string          `json:"repository"`
	DockerURL   string          `json:"docker_url"`
	UpdatedTags json.RawMessage `json:"updated_tags"`
}

// tags returns the tags a push updated: a list in today's payloads, an
// object of tag to legacy image id in older Quay versions (sorted by tag,
// the ids dropped: they are not manifest digests).
func (p quayPayload) tags() ([]string, error) {
	if len(p.UpdatedTags) == 0 || string(p.UpdatedTags) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(p.UpdatedTags, &list); err == nil {
		return list, nil
	}
	var byTag map[string]json.RawMessage
	if err := json.Unmarshal(p.UpdatedTags, &byTag); err != nil {
		return nil, fmt.Errorf("updated_tags is neither a list of tags nor an object of tags")
	}
	return slices.Sorted(maps.Keys(byTag)), nil
}

func (quayProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "Quay", true)
	if err != nil {
		return Result{}, err
	}
	var p quayPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: Quay payload: %v", ErrMalformed, err)
	}
	ref := p.DockerURL // "quay.io/namespace/repo"
	if ref == "" {
		if p.Repository == "" {
			return Result{}, fmt.Errorf("%w: Quay payload has no docker_url or repository", ErrMalformed)
		}
		ref = "quay.io/" + p.Repository
	}
	tags, err := p.tags()
	if err != nil {
		return Result{}, fmt.Errorf("%w: Quay payload: %v", ErrMalformed, err)
	}
	host, path, _ := strings.Cut(ref, "/")
	// Quay sends no id; the content hash plus the tag is stable across its
	// retries and distinct per tag.
	base := contentID(payload)
	events := make([]event.Event, 0, len(tags))
	for _, tag := range tags {
		ev := newImageEvent("quay", base+"/"+tag, TypeImagePush, host, path, tag, "", payload)
		if err := setData(&ev, payload); err != nil {
			return Result{}, err
		}
		events = append(events, ev)
	}
	return Result{Events: events}, nil
}

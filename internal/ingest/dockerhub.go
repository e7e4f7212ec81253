package ingest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Docker Hub webhooks (https://docs.docker.com/docker-hub/repos/manage/webhooks/):
// a POST with the push's repository and tag. Docker Hub can neither sign
// nor add headers, so the source is authenticated by a secret token in the
// hook URL, /v1/hooks/{source}/{token}, compared in constant time and never
// logged. It sends no delivery id: the id is a hash of the body, which a
// retry repeats.

func init() { Register(dockerHubProvider{}) }

type dockerHubProvider struct{ pathToken }

var (
	_ Provider      = dockerHubProvider{}
	_ Signer        = dockerHubProvider{}
	_ EarlyVerifier = dockerHubProvider{}
)

func (dockerHubProvider) Kind() string { return "dockerhub" }

type dockerHubPayload struct {
	CallbackURL string `json:"callback_url"`
	PushData    struct {
		Tag      string  `json:"tag"`
		Pusher   string  `json:"pusher"`
		PushedAt float64 `json:"pushed_at"`
	} `json:"push_data"`
	Repository struct {
		RepoName string `json:"repo_name"`
	} `json:"repository"`
}

func (dockerHubProvider) Normalize(req *Request) (Result, error) {
	payload, err := requireJSON(req, "Docker Hub", true)
	if err != nil {
		return Result{}, err
	}
	var p dockerHubPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: Docker Hub payload: %v", ErrMalformed, err)
	}
	if p.Repository.RepoName == "" {
		return Result{}, fmt.Errorf("%w: Docker Hub payload has no repository.repo_name", ErrMalformed)
	}
	ev := newImageEvent("dockerhub", "", TypeImagePush, "docker.io", p.Repository.RepoName, p.PushData.Tag, "", payload)
	setExt(&ev, "actor", p.PushData.Pusher)
	if p.PushData.PushedAt > 0 {
		ev.SetTime(time.Unix(int64(p.PushData.PushedAt), 0).UTC())
	}
	if err := setData(&ev, payload); err != nil {
		return Result{}, err
	}
	return Result{Events: []event.Event{ev}}, nil
}

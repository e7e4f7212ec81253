package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Comment commands on GitLab: note events on merge requests. The note
// carries the merge request with its last commit, so no API call is
// needed to re-run it.

var _ commentProvider = gitlabProvider{}

// gitlabNote is the part of a note payload commands read.
type gitlabNote struct {
	ObjectKind       string `json:"object_kind"`
	ObjectAttributes struct {
		ID           int64  `json:"id"`
		Note         string `json:"note"`
		NoteableType string `json:"noteable_type"`
		AuthorID     int64  `json:"author_id"`
		// Action is "create" or "update" (GitLab 15.x and later); older
		// versions send none, and only for new notes.
		Action string `json:"action"`
	} `json:"object_attributes"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	MergeRequest *struct {
		IID             int   `json:"iid"`
		AuthorID        int64 `json:"author_id"`
		SourceProjectID int64 `json:"source_project_id"`
		TargetProjectID int64 `json:"target_project_id"`
	} `json:"merge_request"`
}

func (gitlabProvider) prComment(ev *event.Event) (*prComment, error) {
	if ev.Type() != "com.gitlab.note" {
		return nil, nil
	}
	var n gitlabNote
	if err := json.Unmarshal(ev.Data(), &n); err != nil {
		return nil, fmt.Errorf("note payload: %w", err)
	}
	a := n.ObjectAttributes
	repo, _ := ev.Extensions()["repository"].(string)
	if a.NoteableType != "MergeRequest" || n.MergeRequest == nil || a.ID == 0 || repo == "" {
		return nil, nil
	}
	return &prComment{id: strconv.FormatInt(a.ID, 10), created: a.Action == "" || a.Action == "create", login: n.User.Username,
		body: a.Note, repo: repo, number: strconv.Itoa(n.MergeRequest.IID), byAuthor: a.AuthorID == n.MergeRequest.AuthorID}, nil
}

// pullRequestAt makes the merge request event from the note's copy of
// the merge request (action "update"), with id.
func (p gitlabProvider) pullRequestAt(_ context.Context, _ *routing.Source, c *prComment, ev *event.Event, id string) (*event.Event, error) {
	var note map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data(), &note); err != nil {
		return nil, fmt.Errorf("note payload: %w", err)
	}
	var mr map[string]any
	if err := json.Unmarshal(note["merge_request"], &mr); err != nil {
		return nil, fmt.Errorf("merge request %s: %w", c.number, err)
	}
	mr["action"] = "update"
	payload, err := json.Marshal(map[string]any{"object_kind": "merge_request", "event_type": "merge_request",
		"user": note["user"], "project": note["project"], "repository": note["repository"], "object_attributes": mr})
	if err != nil {
		return nil, fmt.Errorf("merge request %s: %w", c.number, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(gitlabEventHeader, "Merge Request Hook")
	h.Set(gitlabUUIDHeader, id)
	res, err := p.Normalize(&Request{Body: payload, Header: h})
	if err != nil || len(res.Events) != 1 {
		return nil, fmt.Errorf("merge request %s: %v", c.number, err)
	}
	return &res.Events[0], nil
}

// trustedPullRequest: GitLab says nothing of the author's standing, so a
// merge request from another project (a fork) is not trusted.
func (gitlabProvider) trustedPullRequest(ev *event.Event) bool {
	var p struct {
		ObjectAttributes struct {
			SourceProjectID int64 `json:"source_project_id"`
			TargetProjectID int64 `json:"target_project_id"`
		} `json:"object_attributes"`
	}
	if json.Unmarshal(ev.Data(), &p) != nil {
		return false
	}
	a := p.ObjectAttributes
	return a.SourceProjectID != 0 && a.SourceProjectID == a.TargetProjectID
}

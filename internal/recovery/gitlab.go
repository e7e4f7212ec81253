package recovery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// GitLab keeps no redeliverable history of past events: its API can test a
// hook or resend one of its recent events by hand, but not list and resend
// the failed ones. What it does do is disable a project hook after repeated
// failures, and then Switchyard hears nothing: CheckGitLabHook detects it.

// DefaultGitLabAPIURL is gitlab.com's API.
const DefaultGitLabAPIURL = "https://gitlab.com/api/v4"

// HookState is a GitLab project hook's health as GitLab reports it.
type HookState struct {
	// AlertStatus is GitLab's alert_status: executable, disabled or
	// temporarily_disabled.
	AlertStatus string
	// DisabledUntil is when a temporarily disabled hook is retried again.
	DisabledUntil time.Time
}

// Disabled reports whether GitLab stopped (or paused) sending to the hook.
func (s HookState) Disabled() bool {
	return s.AlertStatus == "disabled" || s.AlertStatus == "temporarily_disabled"
}

// GitLabConfig is how to reach a GitLab API: the source's apiURL and
// apiToken.
type GitLabConfig struct {
	APIURL    string // empty: DefaultGitLabAPIURL
	Token     []byte
	Transport http.RoundTripper
}

// CheckGitLabHook reads project hook hookID of project (a path such as
// group/app, or a numeric id) and returns its state.
func CheckGitLabHook(ctx context.Context, cfg GitLabConfig, project string, hookID int64) (HookState, error) {
	base := cfg.APIURL
	if base == "" {
		base = DefaultGitLabAPIURL
	}
	u := strings.TrimSuffix(base, "/") + "/projects/" + url.PathEscape(project) + "/hooks/" + strconv.FormatInt(hookID, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return HookState{}, fmt.Errorf("gitlab hook: %w", err)
	}
	req.Header.Set("PRIVATE-TOKEN", string(cfg.Token))
	client := &http.Client{Timeout: 30 * time.Second, Transport: cfg.Transport}
	resp, err := client.Do(req)
	if err != nil {
		return HookState{}, fmt.Errorf("gitlab hook: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return HookState{}, fmt.Errorf("%w: gitlab %d on project %s hook %d (the token needs the api scope and the Maintainer role)", ErrUnauthorized, resp.StatusCode, project, hookID)
	case resp.StatusCode != http.StatusOK:
		return HookState{}, fmt.Errorf("gitlab hook: project %s hook %d: %s", project, hookID, resp.Status)
	}
	var body struct {
		AlertStatus   string     `json:"alert_status"`
		DisabledUntil *time.Time `json:"disabled_until"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return HookState{}, fmt.Errorf("gitlab hook: decode: %w", err)
	}
	st := HookState{AlertStatus: body.AlertStatus}
	if body.DisabledUntil != nil {
		st.DisabledUntil = *body.DisabledUntil
		if st.AlertStatus == "" && st.DisabledUntil.After(time.Now()) {
			st.AlertStatus = "temporarily_disabled" // older GitLab: disabled_until only
		}
	}
	return st, nil
}

package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/routing"
)

// Status is one commit status to post.
type Status struct {
	Repository  string // owner/name (GitLab: the project's full path)
	Revision    string // the commit sha
	State       string // StatePending, StateSuccess, StateFailure or StateError
	Cancelled   bool   // the run was cancelled: providers with such a state use it
	Context     string // switchyard/<app>/<trigger>
	Description string
	TargetURL   string
	// RepositoryURL is the repository's page (the event's source), the
	// link of hosts that require one when TargetURL is empty.
	RepositoryURL string
}

// poster posts commit statuses to one Git host's API.
type poster interface {
	Post(ctx context.Context, s Status) error
}

// newPoster builds the poster of a source; its API token and URL come from
// the source (apiToken, apiURL).
type newPoster func(src *routing.Source, client *http.Client) (poster, error)

var providers = map[string]newPoster{}

// register adds the poster of a source kind; called from init in the
// provider's file.
func register(kind string, f newPoster) { providers[kind] = f }

// Kinds lists the source kinds that can report commit statuses.
func Kinds() []string {
	var out []string
	for k := range providers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// PostError is a Git host's refusal of a status, or a failure to reach it.
// Its text never holds the source's token.
type PostError struct {
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	msg        string
}

func (e *PostError) Error() string { return e.msg }

// Permanent reports whether retrying cannot help: a 4xx other than 408
// and 429 (a bad token, a missing permission, an unknown commit).
func (e *PostError) Permanent() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusRequestTimeout && e.StatusCode != http.StatusTooManyRequests
}

// permanent reports whether err is a PostError that retrying cannot help.
func permanent(err error) bool {
	var pe *PostError
	return errors.As(err, &pe) && pe.Permanent()
}

// redact turns err into a PostError whose text has every occurrence of the
// token replaced: an error may quote a URL or a body the host echoed.
func redact(err error, status int, token []byte) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if len(token) > 0 {
		msg = strings.ReplaceAll(msg, string(token), "[redacted]")
		msg = strings.ReplaceAll(msg, base64.StdEncoding.EncodeToString(token), "[redacted]")
	}
	return &PostError{StatusCode: status, msg: msg}
}

// maxErrorBody bounds how much of an error answer is quoted.
const maxErrorBody = 512

// postJSON sends body as JSON to url with the given headers (the
// credential among them); any answer but 2xx is an error with the status.
func postJSON(ctx context.Context, client *http.Client, url string, header http.Header, body any, token []byte) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return redact(fmt.Errorf("status request: %w", err), 0, token)
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "switchyard")
	resp, err := client.Do(req)
	if err != nil {
		return redact(fmt.Errorf("post status: %w", err), 0, token)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return redact(fmt.Errorf("post status: %s: %s", resp.Status, strings.TrimSpace(string(snippet))), resp.StatusCode, token)
}

// apiBase returns the source's apiURL without a trailing slash, or def.
func apiBase(src *routing.Source, def string) string {
	if src.APIURL != "" {
		return strings.TrimSuffix(src.APIURL, "/")
	}
	return def
}

// splitRepo splits owner/name; GitLab's nested groups stay in owner.
func splitRepo(repo string) (owner, name string, err error) {
	i := strings.LastIndexByte(repo, '/')
	if i <= 0 || i == len(repo)-1 {
		return "", "", &PostError{StatusCode: http.StatusBadRequest, msg: fmt.Sprintf("repository %q is not owner/name", repo)}
	}
	return repo[:i], repo[i+1:], nil
}

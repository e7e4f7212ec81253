package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCheckGitLabHook: GitLab's alert_status (and, from older versions,
// disabled_until alone) says whether the hook is disabled; a refused token
// is ErrUnauthorized and never shown.
func TestCheckGitLabHook(t *testing.T) {
	const token = "glpat-secret-value"
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, body   string
		status       int
		wantDisabled bool
		wantAlert    string
		wantErr      error
	}{
		{name: "executable", body: `{"id":9,"alert_status":"executable","disabled_until":null}`, status: 200, wantAlert: "executable"},
		{name: "disabled", body: `{"id":9,"alert_status":"disabled","disabled_until":null}`, status: 200, wantDisabled: true, wantAlert: "disabled"},
		{name: "temporarily disabled", body: fmt.Sprintf(`{"alert_status":"temporarily_disabled","disabled_until":%q}`, future), status: 200, wantDisabled: true, wantAlert: "temporarily_disabled"},
		{name: "older gitlab, disabled_until ahead", body: fmt.Sprintf(`{"disabled_until":%q}`, future), status: 200, wantDisabled: true, wantAlert: "temporarily_disabled"},
		{name: "older gitlab, disabled_until past", body: fmt.Sprintf(`{"disabled_until":%q}`, past), status: 200},
		{name: "bad token", status: 401, wantErr: ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.EscapedPath() != "/api/v4/projects/group%2Fweb/hooks/9" || r.Header.Get("PRIVATE-TOKEN") != token {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			st, err := CheckGitLabHook(context.Background(), GitLabConfig{APIURL: srv.URL + "/api/v4/", Token: []byte(token)}, "group/web", 9)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Fatalf("token in error %q", err)
			}
			if st.Disabled() != tt.wantDisabled || st.AlertStatus != tt.wantAlert {
				t.Fatalf("state %+v: disabled %v, want %v (%q)", st, st.Disabled(), tt.wantDisabled, tt.wantAlert)
			}
		})
	}
}

package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDeliveryOK: only a 2xx that GitHub calls OK is a success.
func TestDeliveryOK(t *testing.T) {
	for _, tt := range []struct {
		status string
		code   int
		want   bool
	}{
		{"OK", 202, true}, {"OK", 200, true}, {"", 204, true},
		{"Invalid HTTP Response: 503", 503, false}, {"timed out", 0, false},
		{"failed to connect to host", 0, false}, {"Invalid HTTP Response: 401", 401, false}, {"failed", 200, false},
	} {
		if got := (Delivery{Status: tt.status, StatusCode: tt.code}).OK(); got != tt.want {
			t.Errorf("OK(%q, %d) = %v, want %v", tt.status, tt.code, got, tt.want)
		}
	}
}

// TestGitHubErrors: what the host answers is said, with the scope a
// refused token needs, and never the token.
func TestGitHubErrors(t *testing.T) {
	const token = "ghp_neverShown"
	for _, tt := range []struct {
		status  int
		want    string
		wantErr error
	}{
		{401, "refused the credentials: 401 Bad credentials", ErrUnauthorized},
		{403, "refused the credentials: 403 Must have admin rights", ErrUnauthorized},
		{404, "github: 404 Not Found (no such hook, or the token cannot see it)", nil},
		{422, "github: 422 Validation Failed", nil},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			msg := map[int]string{401: "Bad credentials", 403: "Must have admin rights to Repository.", 404: "Not Found", 422: "Validation Failed"}[tt.status]
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"message":%q}`, msg)
			}))
			defer srv.Close()
			g, err := NewGitHub(GitHubConfig{APIURL: srv.URL, Token: []byte(token)})
			if err != nil {
				t.Fatal(err)
			}
			hook := Hook{Repository: "acme/web", HookID: 1}
			_, _, listErr := g.List(context.Background(), hook, "")
			redeliverErr := g.Redeliver(context.Background(), hook, 5)
			for _, err := range []error{listErr, redeliverErr} {
				if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				if strings.Contains(err.Error(), token) {
					t.Fatalf("token in %q", err)
				}
			}
		})
	}
	if _, _, err := (&GitHub{}).List(context.Background(), Hook{App: true}, ""); !errors.Is(err, ErrNoAppCredentials) {
		t.Fatalf("App hook without credentials: %v", err)
	}
}

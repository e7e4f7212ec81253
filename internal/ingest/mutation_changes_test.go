package ingest

// Tests added for mutants that lived (docs/testing.md, "Mutation testing").

import (
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-github/v60/github"
)

// Which compare API answers are worth a retry: 5xx from 500 up, 408 and
// 429; not other 4xx.
func TestTransientCompareError(t *testing.T) {
	for code, want := range map[int]bool{
		http.StatusInternalServerError: true, http.StatusBadGateway: true, http.StatusRequestTimeout: true,
		http.StatusTooManyRequests: true, http.StatusNotFound: false, http.StatusUnauthorized: false, 499: false,
	} {
		err := &github.ErrorResponse{Response: &http.Response{StatusCode: code}}
		if got := transientCompareError(err); got != want {
			t.Errorf("HTTP %d: transient %v, want %v", code, got, want)
		}
	}
	if transientCompareError(errNotComparable) {
		t.Error("a question the API cannot answer is not transient")
	}
	if !transientCompareError(errors.New("connection reset")) {
		t.Error("a network error is transient")
	}
}

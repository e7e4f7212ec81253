package dispatch

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestInClusterConfigErrorIsReported: a pod environment without its service
// account token (the variables set, the token not mounted) is an error that
// says so, not a nil config.
func TestInClusterConfigErrorIsReported(t *testing.T) {
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil {
		t.Skip("running inside a pod: its token is mounted")
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	cfg, err := loadRESTConfig("")
	if err == nil || cfg != nil || errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), "in-cluster config") {
		t.Fatalf("loadRESTConfig = %v, %v; want the in-cluster config error", cfg, err)
	}
}

// Package deploy tests the Helm chart in deploy/helm/switchyard and the plain
// manifests in deploy/kustomize: helm lint, the rendered objects' security
// and shutdown properties, and a server-side dry-run create of every rendered
// object against a real kube-apiserver (test/k8senv).
//
// helm is built once from the Go module proxy by test/k8s/helm.sh and cached;
// without it the tests fail, they are never skipped.
package deploy

import (
	"testing"

	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// cluster is the real kube-apiserver + etcd shared by the tests here.
var cluster *k8senv.Cluster

func TestMain(m *testing.M) {
	k8senv.Main(m, func(c *k8senv.Cluster) error {
		cluster = c
		return nil
	})
}

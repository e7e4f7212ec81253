package e2e

import (
	"testing"

	"github.com/switchyard-dev/switchyard/test/k8senv"
)

// cluster is the real kube-apiserver + etcd (with Tekton's CRDs) shared by
// all tests in this package. See package k8senv for what it offers
// (AdminConfig, RouterKubeconfig, StopAPIServer/StartAPIServer, ...).
//
// Tests share it: use unique object names (or namespaces) and do not call
// t.Parallel in tests that stop the API server.
var cluster *k8senv.Cluster

func TestMain(m *testing.M) {
	k8senv.Main(m, func(c *k8senv.Cluster) error {
		cluster = c
		return nil
	})
}

// Helpers for test/k8s that need nothing but the Go standard library.
// The kube-apiserver and etcd build recipes live in the nested modules
// ./kubernetes and ./etcd (separate modules so their dependency graphs never
// mix with each other or with the main module).
module github.com/switchyard-dev/switchyard/test/k8s/tools

go 1.26

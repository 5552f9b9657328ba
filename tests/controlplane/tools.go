//go:build tools

// Package tools keeps the Kubernetes commands this module builds in its
// dependency graph: kube-apiserver for the control plane, and the node's
// components (kubelet, kube-proxy, kube-controller-manager, kube-scheduler).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)

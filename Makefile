# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
CONTROLPLANE := tests/controlplane/controlplane.sh
LOCAL_DIR := target/controlplane
export KUBECONFIG := $(CURDIR)/$(LOCAL_DIR)/kubeconfig
CRD_FILE := crds/mappeddomains.closte-operator.io.yaml

.PHONY: help demo test lint crd controlplane cluster-up cluster-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

demo: cluster-up ## local control plane + CRD + examples, then list them
	cargo run -q -- crd | kubectl apply --server-side --field-manager=closte-operator-demo -f -
	kubectl wait --for=condition=Established --timeout=60s crd/mappeddomains.closte-operator.io
	kubectl apply -f examples/
	kubectl get mappeddomains
	@echo; echo "Try: export KUBECONFIG=$(KUBECONFIG); kubectl explain mappeddomain.spec; make cluster-down"

test: controlplane lint ## every test: unit, CLI, and integration against a real kube-apiserver + etcd
	env -u KUBECONFIG cargo test --all-targets

lint: ## formatting and clippy, warnings are errors
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

crd: ## regenerate the committed CRD from the Rust types
	cargo run -q -- crd > $(CRD_FILE)

controlplane: ## build (once, cached by version) kube-apiserver and etcd
	@bash $(CONTROLPLANE) build >/dev/null

cluster-up: ## start the local control plane in the background (idempotent)
	@bash $(CONTROLPLANE) up $(LOCAL_DIR)

cluster-down: ## stop the local control plane and remove its data
	@bash $(CONTROLPLANE) down $(LOCAL_DIR)

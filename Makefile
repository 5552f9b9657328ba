# Entry points for people and CI. `make help` lists them.
SHELL := /bin/bash
CONTROLPLANE := tests/controlplane/controlplane.sh
LOCAL_DIR := target/controlplane
export KUBECONFIG := $(CURDIR)/$(LOCAL_DIR)/kubeconfig
CRD_FILE := crds/mappeddomains.closte-operator.io.yaml

# NODE=1: the demo on a real node (root only): kubelet and containerd beside the
# control plane, the image built here, the chart's own pods
NODE ?=
SIM_DIR := target/demo
SIM_KEY := demo-key
# on a node the simulator serves on the node's address, where pods reach this machine
SIM_HOST := $(if $(NODE),10.88.0.1,127.0.0.1)
SIM_API := http://$(SIM_HOST):18088/api/client
BIN := $(or $(CARGO_TARGET_DIR),target)/debug/closte-operator

.PHONY: help bench demo demo-down test lint crd build controlplane node cluster-up cluster-down sim-up sim-down controller-up controller-down sidecar-down mu-plugin pot bench-sim helm manifests fuzz fuzz-smoke schemathesis image wordpress-image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

demo: cluster-up sim-up helm ## local control plane, the chart, the controller and sidecar under its ServiceAccounts, the simulator; examples end done (NODE=1: on a real node, as pods)
	CLOSTE_CLIENT_API_KEY=$(SIM_KEY) $(BIN) check --closte-api-url $(SIM_API)
	$(if $(NODE),$(MAKE) -s image IMAGE_ARCHIVE=$(SIM_DIR)/closte-operator.oci.tar)
	bash scripts/demo.sh $(BIN) $(SIM_DIR) $(SIM_KEY) $(SIM_API) $(if $(NODE),--node)

demo-down: controller-down sidecar-down sim-down cluster-down ## stop everything the demo started

controller-up: build ## run the controller in the background against the simulator (metrics on :18080)
	@if [ -f $(SIM_DIR)/controller.pid ] && kill -0 $$(cat $(SIM_DIR)/controller.pid) 2>/dev/null; then \
	  echo "controller already running"; \
	else \
	  CLOSTE_CLIENT_API_KEY=$(SIM_KEY) setsid $(BIN) controller --closte-api-url $(SIM_API) \
	    --dns-server 127.0.0.1:10053 --https-port 10443 --ca-file $(SIM_DIR)/ca.pem --expected-target 127.0.0.1 \
	    --metrics-addr 127.0.0.1:18080 >$(SIM_DIR)/controller.log 2>&1 </dev/null & echo $$! >$(SIM_DIR)/controller.pid; \
	  for i in $$(seq 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done; \
	  echo "controller: metrics http://127.0.0.1:18080/metrics, log $(SIM_DIR)/controller.log"; \
	fi

sidecar-down: ## stop the background sidecar
	@if [ -f $(SIM_DIR)/sidecar.pid ]; then kill $$(cat $(SIM_DIR)/sidecar.pid) 2>/dev/null || true; rm -f $(SIM_DIR)/sidecar.pid; echo "sidecar stopped"; fi

controller-down: ## stop the background controller
	@if [ -f $(SIM_DIR)/controller.pid ]; then kill $$(cat $(SIM_DIR)/controller.pid) 2>/dev/null || true; rm -f $(SIM_DIR)/controller.pid; echo "controller stopped"; fi

build: $(BIN)

# rebuilt only when a source changed (a test may hand in the binary it built)
$(BIN): $(shell find src -name '*.rs') Cargo.toml Cargo.lock docs/sidecar-openapi.yaml
	cargo build -q

sim-up: build ## start the Closte simulator in the background (API :18088, DNS :10053, HTTPS :10443)
	@mkdir -p $(SIM_DIR)
	@if [ -f $(SIM_DIR)/sim.pid ] && kill -0 $$(cat $(SIM_DIR)/sim.pid) 2>/dev/null; then \
	  echo "simulator already running: $(SIM_API)"; \
	else \
	  rm -f $(SIM_DIR)/sim.ready; \
	  CLOSTE_CLIENT_API_KEY=$(SIM_KEY) setsid $(BIN) simulate --listen $(SIM_HOST):18088 \
	    --dns-listen $(SIM_HOST):10053 --https-listen $(SIM_HOST):10443 --target-ip $(SIM_HOST) --issue-delay 5s \
	    --ca-out $(SIM_DIR)/ca.pem --state-file $(SIM_DIR)/state.json \
	    >$(SIM_DIR)/sim.ready 2>$(SIM_DIR)/sim.log </dev/null & echo $$! >$(SIM_DIR)/sim.pid; \
	  for i in $$(seq 100); do [ -s $(SIM_DIR)/sim.ready ] && break; sleep 0.1; done; \
	  [ -s $(SIM_DIR)/sim.ready ] || { cat $(SIM_DIR)/sim.log; exit 1; }; \
	  echo "simulator: $$(cat $(SIM_DIR)/sim.ready) (key: $(SIM_KEY), log: $(SIM_DIR)/sim.log)"; \
	fi

sim-down: ## stop the Closte simulator
	@if [ -f $(SIM_DIR)/sim.pid ]; then kill $$(cat $(SIM_DIR)/sim.pid) 2>/dev/null || true; rm -f $(SIM_DIR)/sim.pid; echo "simulator stopped"; fi

bench: controlplane ## the benchmark harness, release build: every scenario (or SCENARIOS="latency sidecar=500"), table + target/bench/results.json
	cargo bench --bench scale -- $(SCENARIOS)

bench-sim: ## simulator throughput with wrk (apt-get install wrk)
	bash bench/simulator.sh 10 32

test: controlplane helm schemathesis lint fuzz-smoke ## every test: unit, CLI, properties, integration against a real kube-apiserver + etcd, the benchmark harness small, a short run of each fuzz target
	env -u KUBECONFIG cargo test --all-targets

lint: ## formatting and clippy, warnings are errors
	cargo fmt --check
	cargo fmt --check --manifest-path fuzz/Cargo.toml
	cargo clippy --all-targets -- -D warnings

fuzz-smoke: ## a short run of every fuzz target (nightly, cargo-fuzz): FUZZ_SMOKE_SECONDS (15) each
	bash fuzz/run.sh $(or $(FUZZ_SMOKE_SECONDS),15)

fuzz: ## long fuzz runs, one target at a time: FUZZ_SECONDS (600) each; TARGETS="..." to choose
	bash fuzz/run.sh $(or $(FUZZ_SECONDS),600) $(TARGETS)

schemathesis: ## install (once, cached by version) schemathesis from PyPI, for tests/sidecar_schema.rs
	@bash tests/tools/schemathesis.sh install >/dev/null

crd: ## regenerate the committed CRD (crds/ and the chart's copy) from the Rust types
	cargo run -q -- crd > $(CRD_FILE)
	cp $(CRD_FILE) charts/closte-operator/files/

pot: ## the mu-plugin's translation template, wordpress/closte-operator/languages/closte-operator.pot (xgettext)
	bash scripts/pot.sh

mu-plugin: pot ## copy the WordPress mu-plugin (wordpress/) into the chart, the source of its ConfigMap
	rm -rf charts/closte-operator/files/mu-plugin
	cp -r wordpress charts/closte-operator/files/mu-plugin

manifests: helm mu-plugin ## render deploy/ (plain manifests for kubectl apply -k) from the chart
	bash deploy/render.sh

# cargo names the crate's own sources by relative paths, so no clone's folder
# is in the binary; the remaps do the same for the dependencies' (cargo's
# registry, build scripts' output). scripts/image.py checks it.
image: ## the image without a Docker engine: static (musl) binary, OCI archive target/image/closte-operator-VERSION.oci.tar (ctr images import)
	@rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
	@command -v musl-gcc >/dev/null || { echo "make image: musl-gcc is missing (ring's C code is compiled with it): apt-get install musl-tools" >&2; exit 1; }
	env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
	  CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=$${CARGO_HOME:-$$HOME/.cargo}=/cargo --remap-path-prefix=$(abspath $(or $(CARGO_TARGET_DIR),target))=/target" \
	  cargo build --release --locked --target x86_64-unknown-linux-musl
	python3 scripts/image.py $(if $(IMAGE_ARCHIVE),--output $(IMAGE_ARCHIVE)) $(or $(CARGO_TARGET_DIR),target)/x86_64-unknown-linux-musl/release/closte-operator

wordpress-image: ## WordPress from Debian's packages (mmdebstrap, cached), OCI archive target/image/closte-wordpress-TAG.oci.tar (ctr images import)
	python3 scripts/wordpress-image.py $(if $(WORDPRESS_IMAGE_ARCHIVE),--output $(WORDPRESS_IMAGE_ARCHIVE))

helm: ## build (once, cached by version) helm from the Go module proxy
	@bash tests/tools/helm.sh >/dev/null

controlplane: ## build (once, cached by version) kube-apiserver and etcd
	@bash $(CONTROLPLANE) build >/dev/null

node: ## build (once, cached by version) the node's kubelet, kube-proxy, kube-controller-manager and kube-scheduler
	@bash $(CONTROLPLANE) build-node >/dev/null

cluster-up: ## start the local control plane in the background (idempotent; NODE=1: with a node, root only)
	@bash $(CONTROLPLANE) up $(LOCAL_DIR) $(if $(NODE),--node)

cluster-down: ## stop the local control plane and remove its data
	@bash $(CONTROLPLANE) down $(LOCAL_DIR)

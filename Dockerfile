# closte-operator: one static binary (controller, sidecar, status, check,
# simulate, crd) on a distroless non-root base, with the WordPress mu-plugin
# at /usr/share/closte-operator/mu-plugin for an init container or a copy.
#   docker build -t closte-operator:0.1.0 .
# The Helm chart runs it as user 65532 with a read-only root filesystem.

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY docs docs
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/closte-operator /closte-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /closte-operator /usr/local/bin/closte-operator
COPY --from=build /closte-operator /usr/local/bin/kubectl-closte
COPY wordpress/ /usr/share/closte-operator/mu-plugin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/closte-operator"]
CMD ["controller"]

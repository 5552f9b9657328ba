# closte-operator: one static binary (controller, sidecar, status, check,
# simulate, crd) on a distroless non-root base, with the WordPress mu-plugin
# at /usr/share/closte-operator/mu-plugin for an init container or a copy.
#   docker build -t closte-operator:0.2.0-dev --build-arg VERSION=0.2.0-dev \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD) .
# The Helm chart runs it as user 65532 with a read-only root filesystem.
# `make image` builds the same image without a Docker engine (scripts/image.py,
# docs/image.md); tests/image.rs checks that this file describes it.

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY docs docs
# No build machine's folders in the binary (dependencies' panic locations).
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=/usr/local/cargo=/cargo --remap-path-prefix=/src/target=/target"
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/closte-operator /closte-operator

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION REVISION CREATED SOURCE=https://github.com/your-org/closte-operator
LABEL org.opencontainers.image.title="closte-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps WordPress multisite mapped domains registered as Closte domain aliases" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /closte-operator /usr/local/bin/closte-operator
COPY --from=build /closte-operator /usr/local/bin/kubectl-closte
COPY wordpress/ /usr/share/closte-operator/mu-plugin/
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/closte-operator"]
CMD ["controller"]

# syntax=docker/dockerfile:1
# Build: a static binary, no cgo.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
# Stamped into `router version`: docker build --build-arg VERSION=v1.2.0
# --build-arg COMMIT=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%FT%TZ) .
ARG VERSION=devel
ARG COMMIT=""
ARG BUILD_DATE=""
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
    -o /out/router ./cmd/router

# Run: distroless static, non-root (uid 65532), nothing but the binary and
# the example rules. Mount your own rules over /etc/switchyard/rules and a
# volume at /var/lib/switchyard for the embedded JetStream store.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/router /usr/local/bin/router
COPY rules /etc/switchyard/rules
USER 65532:65532
EXPOSE 8080
VOLUME ["/var/lib/switchyard"]
ENTRYPOINT ["/usr/local/bin/router"]
CMD ["serve", "--rules", "/etc/switchyard/rules", "--data-dir", "/var/lib/switchyard"]

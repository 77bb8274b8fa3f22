# Build with cgo so the PAM authenticator is available (libpam is loaded at
# run time, so no headers are needed); the runtime image carries only libpam
# and CA certificates.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X github.com/tiledgo/server/internal/version.version=${VERSION} -X github.com/tiledgo/server/internal/version.commit=${COMMIT}" \
      -o /out/server ./cmd/server

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates libpam0g && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home tiled
COPY --from=build /out/server /usr/local/bin/server
# PAM logins check accounts of this image, and pam_unix needs /etc/shadow:
# for a pam provider, add the accounts here and run with group "shadow"
# (--group-add shadow / runAsGroup), otherwise every PAM login answers 503.
USER 10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/server"]
CMD ["serve", "demo", "--host", "0.0.0.0"]

//go:build tools

// Package internal pins the modules the project builds on, so that go.mod and
// go.sum hold them before the first package imports each one.
package internal

import (
	_ "github.com/apache/arrow-go/v18/arrow/ipc"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/labstack/echo/v4"
	_ "github.com/msteinert/pam/v2"
	_ "github.com/pressly/goose/v3"
	_ "github.com/pressly/goose/v3/lock"
	_ "github.com/testcontainers/testcontainers-go/modules/postgres"
	_ "github.com/zitadel/oidc/v3/pkg/op"
	_ "go.opentelemetry.io/contrib/instrumentation/github.com/labstack/echo/otelecho"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "golang.org/x/oauth2"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)

// Package pgtest gives each test its own PostgreSQL database.
//
// It looks for a server in this order:
//
//  1. TEST_DATABASE_URL, an admin connection (it must be allowed to
//     CREATE DATABASE), e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable;
//  2. a throwaway container started with testcontainers-go, when a Docker
//     daemon answers (one per test binary, reaped when it exits);
//  3. neither: the test is skipped with a reason printed to stderr, except
//     under CI=true, where a missing database fails the test, so that CI
//     cannot turn green by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
)

// EnvURL names the variable holding the admin connection URL.
const EnvURL = "TEST_DATABASE_URL"

// NewDatabase creates an empty database for this test, drops it when the
// test ends, and returns its connection URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := adminURL(t)
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec(ctx, t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE (PostgreSQL 13+) ends sessions a failed test left open.
		exec(ctx, t, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	uri, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	return uri
}

func exec(ctx context.Context, t testing.TB, admin, stmt string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to the admin database: %v", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("pgtest: %s: %v", stmt, err)
	}
}

// databaseName is unique and still says which test it belongs to (names
// are at most 63 bytes).
func databaseName(test string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(test) {
		if b.Len() >= 40 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	return "t_" + b.String() + "_" + hex.EncodeToString(suffix)
}

// withDatabase points a URL or a keyword/value connection string at name.
func withDatabase(admin, name string) (string, error) {
	if !strings.Contains(admin, "://") {
		return admin + " dbname=" + name, nil
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func adminURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	u, err := shared.url()
	if err == nil {
		return u
	}
	msg := fmt.Sprintf("pgtest: no PostgreSQL: %s is unset and no Docker daemon answers (%v). "+
		"Set %s=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable to run the PostgreSQL tests", EnvURL, err, EnvURL)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + ". Failing, not skipping, because CI=true: a skip would hide the missing database")
	}
	msg = "SKIPPING POSTGRESQL TEST: " + msg
	shared.warn.Do(func() { fmt.Fprintln(os.Stderr, msg) })
	t.Skip(msg)
	return ""
}

// shared is the one container of this test binary. It is package state on
// purpose: starting a container per test would take seconds each, and
// testcontainers' reaper removes it when the binary exits.
var shared container

type container struct {
	once sync.Once
	uri  string
	err  error
	warn sync.Once
}

func (c *container) url() (string, error) {
	c.once.Do(func() { c.uri, c.err = startContainer() })
	return c.uri, c.err
}

func startContainer() (uri string, err error) {
	// testcontainers panics on some hosts without Docker.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return "", fmt.Errorf("docker: %w", err)
	}
	defer func() { _ = provider.Close() }()
	if err := provider.Health(ctx); err != nil {
		return "", fmt.Errorf("docker: %w", err)
	}
	ctr, err := postgres.Run(ctx, "postgres:16-alpine", postgres.BasicWaitStrategies())
	if err != nil {
		return "", fmt.Errorf("start postgres container: %w", err)
	}
	return ctr.ConnectionString(ctx, "sslmode=disable")
}

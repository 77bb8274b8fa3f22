package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/storeerr"
)

func TestMapErr(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: not one of the sentinels
	}{
		{"no rows", pgx.ErrNoRows, storeerr.ErrNotFound},
		{"unique_violation", pg("23505"), storeerr.ErrConflict},
		{"foreign_key_violation", pg("23503"), storeerr.ErrNotFound},
		{"too_many_connections", pg("53300"), storeerr.ErrUnavailable},
		{"admin_shutdown", pg("57P01"), storeerr.ErrUnavailable},
		{"cannot_connect_now", pg("57P03"), storeerr.ErrUnavailable},
		{"query_canceled", pg("57014"), storeerr.ErrUnavailable},
		{"serialization_failure", pg("40001"), storeerr.ErrUnavailable},
		{"deadlock_detected", pg("40P01"), storeerr.ErrUnavailable},
		{"lock_not_available", pg("55P03"), storeerr.ErrUnavailable},
		{"connection_failure", pg("08006"), storeerr.ErrUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), storeerr.ErrUnavailable},
		{"canceled", context.Canceled, storeerr.ErrUnavailable},
		{"connection dropped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), storeerr.ErrUnavailable},
		{"invalid_password", pg("28P01"), nil},
		{"invalid_catalog_name", pg("3D000"), nil},
		{"undefined_table", pg("42P01"), nil},
		{"check_violation", pg("23514"), nil},
		{"a scan bug", errors.New("can't scan into dest[0]"), nil},
	} {
		got := mapErr(tc.err)
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: the cause is lost: %v", tc.name, got)
		}
		for _, s := range []error{storeerr.ErrNotFound, storeerr.ErrConflict, storeerr.ErrUnavailable} {
			if errors.Is(got, s) != (s == tc.want) {
				t.Errorf("%s: mapErr = %v, want sentinel %v", tc.name, got, tc.want)
			}
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
	// Errors the store's own functions return pass through unchanged.
	for _, err := range []error{storeerr.ErrNotFound, fmt.Errorf("x: %w", sessions.ErrStaleRefresh)} {
		if got := mapErr(err); got != err {
			t.Errorf("mapErr(%v) = %v, want it unchanged", err, got)
		}
	}
}

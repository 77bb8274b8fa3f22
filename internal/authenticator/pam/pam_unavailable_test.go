//go:build !cgo || !linux || nopam

package pam

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/tiledgo/server/internal/authenticator"
)

func TestNewUnavailable(t *testing.T) {
	for _, cfg := range []Config{{}, {Service: "tiled"}, {Service: "../bad", Timeout: -1}} {
		a, err := New(cfg)
		if a != nil || err == nil {
			t.Fatalf("New(%+v) = %v, %v; want an error", cfg, a, err)
		}
		if !errors.Is(err, authenticator.ErrUnavailable) {
			t.Errorf("New error %q is not authenticator.ErrUnavailable", err)
		}
		want := "PAM authentication is unavailable: this binary was built without cgo (CGO_ENABLED=0); rebuild with cgo, or use another authenticator"
		switch {
		case builtWithoutPAM:
			want = "PAM authentication is unavailable: " + noPAMReason
		case runtime.GOOS != "linux":
			want = "PAM authentication is unavailable: this server supports PAM on Linux only"
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("New error = %q, want it to start with %q", err, want)
		}
	}
}

func TestAuthenticateUnavailable(t *testing.T) {
	// New refuses, but an Authenticator made by hand must not pretend to
	// check anything either.
	a := &Authenticator{timeout: DefaultTimeout, slots: make(chan struct{}, 1)}
	_, err := a.Authenticate(context.Background(), "alice", "secret")
	if !errors.Is(err, authenticator.ErrUnavailable) {
		t.Fatalf("Authenticate error = %v, want authenticator.ErrUnavailable", err)
	}
}

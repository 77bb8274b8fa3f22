package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// fromAddr is the header the test, as the server's trusted proxy, adds to
// name the client address (server.trusted_proxies lists loopback).
func fromAddr(addr string) http.Header { return hdr("X-Forwarded-For", addr) }

// loginFrom is a password login at toy from client address addr.
func (c *client) loginFrom(addr, user, password string) reply {
	c.t.Helper()
	return c.postForm("/api/v1/auth/provider/"+provToy+"/token", fromAddr(addr), url.Values{"username": {user}, "password": {password}})
}

// expect429 checks a login-limit refusal: 429, the message, and a
// Retry-After of 1..maxWait seconds.
func expect429(t *testing.T, r reply, detail string, maxWait int) {
	t.Helper()
	expectDetail(t, r, http.StatusTooManyRequests, detail)
	if wait, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || wait < 1 || wait > maxWait {
		t.Errorf("Retry-After %q, want 1..%d seconds: %s", r.Header.Get("Retry-After"), maxWait, r)
	}
}

const (
	msgTooManyForUser    = "Too many failed login attempts. Try again later."
	msgTooManyForAddress = "Too many failed login attempts from this address. Try again later."
)

// TestMultiLoginLimits (issue 19) against the real binary behind a trusted
// proxy: wrong passwords for alice from one address reach that pair's limit
// and then answer 429 even with the right password, while alice logs in
// from her own address; one address failing over many usernames is
// refused at its own limit; and without trusted proxies a client's
// X-Forwarded-For is ignored, so it cannot spread its attempts over
// invented addresses.
func TestMultiLoginLimits(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, db backend) {
		const perPair, perAddress, window = 3, 6, 900
		limits := map[string]any{
			"login_failures_per_user_address": perPair, "login_failures_per_address": perAddress,
			"login_failure_window": window, "login_failure_max_delay": 0,
		}
		cfg := muConfig(db)
		server := map[string]any{"trusted_proxies": []any{"127.0.0.0/8"}}
		for k, v := range limits {
			server[k] = v
		}
		cfg["server"] = server
		s := startMU(t, cfg)
		c := s.client(t)

		t.Run("pair", func(t *testing.T) {
			const attacker, home = "198.51.100.66", "203.0.113.10"
			for _, user := range []string{"alice", "ALICE", "Alice"} {
				expectDetail(t, c.loginFrom(attacker, user, "guess"), http.StatusUnauthorized, msgWrongPassword)
			}
			expect429(t, c.loginFrom(attacker, "alice", muPasswords["alice"]), msgTooManyForUser, window)
			tokensOf(t, c.loginFrom(home, "alice", muPasswords["alice"]))
			// Another address: limit-1 failures, then the password works.
			for range perPair - 1 {
				expectDetail(t, c.loginFrom("192.0.2.50", "alice", "guess"), http.StatusUnauthorized, msgWrongPassword)
			}
			tokensOf(t, c.loginFrom("192.0.2.50", "alice", muPasswords["alice"]))
		})
		t.Run("address", func(t *testing.T) {
			const scanner = "198.51.100.77"
			for i := range perAddress {
				expectDetail(t, c.loginFrom(scanner, fmt.Sprintf("nobody%d", i), "guess"), http.StatusUnauthorized, msgWrongPassword)
			}
			expect429(t, c.loginFrom(scanner, "bob", muPasswords["bob"]), msgTooManyForAddress, window)
			expect429(t, c.loginFrom(scanner, "nobody-else", "guess"), msgTooManyForAddress, window)
			tokensOf(t, c.loginFrom("203.0.113.77", "bob", muPasswords["bob"]))
		})

		t.Run("untrusted peer", func(t *testing.T) {
			cfg := muConfig(newBackend(t, "sqlite"))
			cfg["server"] = limits // no trusted proxies
			s := startMU(t, cfg)
			c := s.client(t)
			for i := range perPair {
				expectDetail(t, c.loginFrom(fmt.Sprintf("198.51.100.%d", i+1), "cara", "guess"), http.StatusUnauthorized, msgWrongPassword)
			}
			expect429(t, c.loginFrom("198.51.100.200", "cara", muPasswords["cara"]), msgTooManyForUser, window)
		})
	})
}

package authapi

import (
	"bufio"
	"context"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/authenticator"
	"github.com/tiledgo/server/internal/sessions"
)

// loginFrom is a password login at replica i from client address addr
// (named in X-Forwarded-For by the test, the replicas' trusted proxy).
func (e *env) loginFrom(i int, addr, provider, user, password string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.api(i, "provider/"+provider+"/token"),
		strings.NewReader(url.Values{"username": {user}, "password": {password}}.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	return e.do(req)
}

func (e *env) setLoginLimit(l LoginLimit) {
	for _, r := range e.replicas {
		r.h.LoginLimit = l
	}
}

// expect checks a status, and for 429 a Retry-After within 1..maxWait and
// the message.
func expect(t *testing.T, r response, status int, what string, maxWait ...int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
	}
	if status == http.StatusTooManyRequests {
		if wait, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || wait < 1 || wait > maxWait[0] {
			t.Fatalf("%s: Retry-After %q, want 1..%d seconds", what, r.header.Get("Retry-After"), maxWait[0])
		}
	}
}

// TestPasswordLoginPairLimit: failures of one username from one address
// (in any letter case, on any replica) reach the limit at exactly
// PerUserAddress, then that pair answers 429 with Retry-After until the
// window ends, even with the right password; the same username from
// another address, and the owner's right password there, are unaffected;
// a success clears the pair; concurrent attempts cannot slip past.
func TestPasswordLoginPairLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const max, window = 3, 15 * time.Minute
		e.setLoginLimit(LoginLimit{PerUserAddress: max, PerAddress: 1000, Window: window})
		const attacker, owner = "198.51.100.66", "203.0.113.10"

		for i, user := range []string{"carl", "Carl", "CARL"} {
			expect(t, e.loginFrom(i%2, attacker, provPassword, user, "wrong"), http.StatusUnauthorized,
				fmt.Sprintf("failure %d (%s)", i+1, user))
		}
		// limit+1: refused before the password is checked, in any spelling.
		r := e.loginFrom(1, attacker, provPassword, "cArL", "pw")
		expect(t, r, http.StatusTooManyRequests, "right password from the failing address", int(window.Seconds()))
		if d := r.detail(t); d != msgTooManyForUser {
			t.Fatalf("429 detail %q", d)
		}
		// The owner, elsewhere, logs in; the attack did not lock them out.
		expect(t, e.loginFrom(0, owner, provPassword, "carl", "pw"), http.StatusOK, "right password from another address")
		// Another address's failures count on their own: limit-1 of them
		// and then the right password is 200.
		for range max - 1 {
			expect(t, e.loginFrom(1, "192.0.2.33", provPassword, "carl", "wrong"), http.StatusUnauthorized, "another address's failure")
		}
		expect(t, e.loginFrom(0, "192.0.2.33", provPassword, "carl", "pw"), http.StatusOK, "limit-1 failures, then the right password")

		e.clock.advance(window - time.Second)
		expect(t, e.loginFrom(0, attacker, provPassword, "carl", "pw"), http.StatusTooManyRequests, "one second before the window ends", 1)
		e.clock.advance(time.Second)
		expect(t, e.loginFrom(0, attacker, provPassword, "carl", "pw"), http.StatusOK, "right password when the window has ended")

		// The success cleared the pair: max failures again before the limit.
		for i := range max {
			expect(t, e.loginFrom(i%2, attacker, provPassword, "carl", "wrong"), http.StatusUnauthorized, fmt.Sprintf("failure %d after a success", i+1))
		}
		expect(t, e.loginFrom(0, attacker, provPassword, "carl", "wrong"), http.StatusTooManyRequests, "failure past the limit", int(window.Seconds()))

		// Concurrent wrong passwords in a fresh window: exactly max checked.
		e.clock.advance(window)
		const n = 30
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = e.loginFrom(i%2, attacker, provPassword, "carl", "wrong").status })
		}
		wg.Wait()
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[http.StatusUnauthorized] != max || counts[http.StatusTooManyRequests] != n-max {
			t.Fatalf("%d concurrent wrong passwords answered %v; want %d 401 and %d 429", n, counts, max, n-max)
		}
	})
}

// recordingStore counts the login-attempt keys written (allowed takes).
type recordingStore struct {
	sessions.Store
	mu      sync.Mutex
	written map[string]bool
}

func (s *recordingStore) TakeLoginAttempt(ctx context.Context, key string, now time.Time, window time.Duration, max int) (sessions.LoginAttempt, error) {
	a, err := s.Store.TakeLoginAttempt(ctx, key, now, window, max)
	if err == nil && a.Allowed {
		s.mu.Lock()
		s.written[key] = true
		s.mu.Unlock()
	}
	return a, err
}

func (s *recordingStore) keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.written)
}

// TestPasswordLoginAddressLimit: one address failing over many usernames
// is refused at exactly PerAddress, whatever username it tries next, and
// from then on writes nothing; other addresses are unaffected; successful
// logins never count, so an office behind one address logs in any number
// of times; IPv6 clients count per /64.
func TestPasswordLoginAddressLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const max, window = 5, 15 * time.Minute
		e.setLoginLimit(LoginLimit{PerUserAddress: 10, PerAddress: max, Window: window})
		rec := &recordingStore{Store: e.store, written: map[string]bool{}}
		for _, r := range e.replicas {
			r.h.Sessions = rec
		}
		const scanner = "198.51.100.7"
		for i := range max {
			expect(t, e.loginFrom(i%2, scanner, provPassword, fmt.Sprintf("user%d", i), "guess"), http.StatusUnauthorized,
				fmt.Sprintf("failure %d over distinct usernames", i+1))
		}
		written := rec.keys()
		for i := range 50 {
			r := e.loginFrom(i%2, scanner, provPassword, fmt.Sprintf("other%d", i), "guess")
			expect(t, r, http.StatusTooManyRequests, fmt.Sprintf("attempt %d past the address limit", max+i+1), int(window.Seconds()))
			if d := r.detail(t); d != msgTooManyForAddress {
				t.Fatalf("429 detail %q", d)
			}
		}
		expect(t, e.loginFrom(0, scanner, provPassword, "carl", "pw"), http.StatusTooManyRequests,
			"the right password from the refused address", int(window.Seconds()))
		if got := rec.keys(); got != written || written != max+1 {
			t.Fatalf("keys written: %d after the limit, %d at it; want %d (one per username and the address), nothing more", got, written, max+1)
		}
		// Other addresses are not affected, nor is carl elsewhere.
		expect(t, e.loginFrom(1, "203.0.113.10", provPassword, "carl", "pw"), http.StatusOK, "carl from another address")
		// An office behind one address: any number of successful logins,
		// and limit-1 failures on top of them still answer 401.
		const office = "192.0.2.200"
		for i := range 3 * max {
			expect(t, e.loginFrom(i%2, office, provPassword, "carl", "pw"), http.StatusOK, fmt.Sprintf("office login %d", i+1))
		}
		for i := range max - 1 {
			expect(t, e.loginFrom(i%2, office, provPassword, fmt.Sprintf("typo%d", i), "x"), http.StatusUnauthorized, "office failure")
		}
		expect(t, e.loginFrom(0, office, provPassword, "carl", "pw"), http.StatusOK, "office login after limit-1 failures")
		expect(t, e.loginFrom(0, office, provPassword, "typo", "x"), http.StatusUnauthorized, "the office's limit-th failure")
		expect(t, e.loginFrom(0, office, provPassword, "carl", "pw"), http.StatusTooManyRequests, "the office past its limit", int(window.Seconds()))

		// IPv6: one /64 is one address; the next /64 is another.
		for i := range max {
			expect(t, e.loginFrom(0, fmt.Sprintf("2001:db8:1:2::%x", i+1), provPassword, "v6user", "x"), http.StatusUnauthorized, "v6 failure")
		}
		expect(t, e.loginFrom(0, "2001:db8:1:2:ffff::1", provPassword, "carl", "pw"), http.StatusTooManyRequests,
			"another address of the same /64", int(window.Seconds()))
		expect(t, e.loginFrom(0, "2001:db8:1:3::1", provPassword, "carl", "pw"), http.StatusOK, "the next /64")

		e.clock.advance(window)
		expect(t, e.loginFrom(0, scanner, provPassword, "carl", "pw"), http.StatusOK, "the scanner's address after the window")
	})
}

// TestPasswordLoginDelay: from the third attempt of a failing pair, the
// password is checked only after a delay that doubles from 500 ms up to
// MaxDelay; another address is not delayed, and a success starts over.
func TestPasswordLoginDelay(t *testing.T) {
	e := newEnv(t, envOptions{})
	var mu sync.Mutex
	var slept []time.Duration
	e.setLoginLimit(LoginLimit{PerUserAddress: 10, PerAddress: 1000, Window: time.Hour, MaxDelay: 5 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			slept = append(slept, d)
			return nil
		}})
	take := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		out := slept
		slept = nil
		return out
	}
	const addr = "198.51.100.20"
	var got []string
	for range 9 {
		e.loginFrom(0, addr, provPassword, "carl", "wrong")
		got = append(got, fmt.Sprint(take()))
	}
	want := "[] [] [500ms] [1s] [2s] [4s] [5s] [5s] [5s]"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("delays of nine failures: %s, want %s", s, want)
	}
	expect(t, e.loginFrom(1, "203.0.113.10", provPassword, "carl", "pw"), http.StatusOK, "another address")
	if d := take(); len(d) != 0 {
		t.Fatalf("another address was delayed %v", d)
	}
	// The right password is delayed too (the delay comes before the check)...
	expect(t, e.loginFrom(0, addr, provPassword, "carl", "pw"), http.StatusOK, "right password after nine failures")
	if d := take(); fmt.Sprint(d) != "[5s]" {
		t.Fatalf("the right password after nine failures waited %v, want [5s]", d)
	}
	// ...and a success starts the pair over.
	e.loginFrom(0, addr, provPassword, "carl", "wrong")
	e.loginFrom(0, addr, provPassword, "carl", "wrong")
	if d := take(); len(d) != 0 {
		t.Fatalf("two failures after a success waited %v", d)
	}
	// A client that goes away during its delay is refunded.
	e.setLoginLimit(LoginLimit{PerUserAddress: 3, PerAddress: 1000, Window: time.Hour, MaxDelay: time.Second,
		Sleep: func(context.Context, time.Duration) error { return context.Canceled }})
	e.loginFrom(0, addr, provPassword, "carl", "wrong") // the pair's 3rd attempt: delayed, abandoned
	e.loginFrom(0, addr, provPassword, "carl", "wrong")
	e.setLoginLimit(LoginLimit{PerUserAddress: 3, PerAddress: 1000, Window: time.Hour})
	expect(t, e.loginFrom(0, addr, provPassword, "carl", "wrong"), http.StatusUnauthorized, "the 3rd counted failure, abandoned attempts refunded")
	expect(t, e.loginFrom(0, addr, provPassword, "carl", "wrong"), http.StatusTooManyRequests, "past the limit", 3600)
}

// flaky is an authenticator that is unavailable.
type flaky struct{}

func (flaky) Authenticate(context.Context, string, string) (string, error) {
	return "", fmt.Errorf("%w: PAM is down", authenticator.ErrUnavailable)
}

// TestPasswordLoginUnavailableIsRefunded: attempts whose password could not
// be checked count against neither limit.
func TestPasswordLoginUnavailableIsRefunded(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.setLoginLimit(LoginLimit{PerUserAddress: 2, PerAddress: 2, Window: time.Hour})
	for _, r := range e.replicas {
		r.h.Providers = append(r.h.Providers, Provider{Name: "flaky", Password: flaky{}})
	}
	const addr = "198.51.100.99"
	for i := range 5 {
		expect(t, e.loginFrom(i%2, addr, "flaky", "carl", "pw"), http.StatusServiceUnavailable, "authenticator down")
	}
	expect(t, e.loginFrom(0, addr, provPassword, "carl", "wrong"), http.StatusUnauthorized, "1st failure")
	expect(t, e.loginFrom(0, addr, provPassword, "carl", "pw"), http.StatusOK, "right password after one failure")
}

// A username far longer than an index entry may be (PostgreSQL refuses
// btree entries over about 2.7 kB) is a 401 like any other.
func TestPasswordLoginLongUsername(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.setLoginLimit(LoginLimit{PerUserAddress: 10, PerAddress: 100, Window: time.Hour})
		r := e.loginFrom(0, "198.51.100.1", provPassword, strings.Repeat("a", 10000), "x")
		expect(t, r, http.StatusUnauthorized, "10 kB username")
	})
}

// TestBodyLimits: every auth route refuses a body over maxBody with one
// answer, 413 "Request body too large", whether form or JSON, announced by
// Content-Length (refused before it is read) or sent chunked; a body of
// exactly maxBody is read.
func TestBodyLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	routes := []struct{ path, contentType string }{
		{"provider/" + provPassword + "/token", "application/x-www-form-urlencoded"},
		{"provider/" + provPassword + "/token", "multipart/form-data; boundary=x"},
		{"session/refresh", "application/json"},
		{"session/refresh", "application/x-www-form-urlencoded"},
		{"session/revoke", "application/json"},
		{"apikey", "application/json"},
		{"provider/" + provJSON + "/token", "application/json"},
		{"provider/" + provJSON + "/device_code", "application/x-www-form-urlencoded"},
	}
	login := e.loginFrom(0, "192.0.2.1", provPassword, "carl", "pw")
	expect(t, login, http.StatusOK, "login")
	access, _ := login.json(t)["access_token"].(string)
	send := func(path, ct string, n int, chunked bool) response {
		prefix := "username="
		if strings.HasPrefix(ct, "multipart/") {
			prefix = "--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n"
		}
		body := prefix + strings.Repeat("a", n-len(prefix))
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // no length known: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, e.api(0, path), rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+access) // so that the key route reads its body
		return e.do(req)
	}
	for _, rt := range routes {
		for _, chunked := range []bool{false, true} {
			name := fmt.Sprintf("%s %s chunked=%v", rt.path, rt.contentType, chunked)
			for _, n := range []int{maxBody + 1, 100 << 20} {
				if n > maxBody+1 && (chunked || !strings.HasSuffix(rt.path, "token") && rt.path != "session/refresh") {
					// 100 MB (refused by its Content-Length, unread) once
					// for a login form and once for JSON is enough; the
					// server hangs up on a huge chunked body after its 413.
					continue
				}
				r := send(rt.path, rt.contentType, n, chunked)
				if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, msgTooLarge) {
					t.Errorf("%s, %d bytes: %d %s, want 413", name, n, r.status, r.body)
				}
			}
			if r := send(rt.path, rt.contentType, maxBody, chunked); r.status == http.StatusRequestEntityTooLarge || r.status >= 500 {
				t.Errorf("%s, exactly %d bytes: %d %s", name, maxBody, r.status, r.body)
			}
		}
	}
}

// TestBodyLimitBeforeReading: a body announced larger than the limit is
// refused from its Content-Length alone: the client has sent only its
// headers, and the 413 comes at once instead of a wait for the body.
func TestBodyLimitBeforeReading(t *testing.T) {
	e := newEnv(t, envOptions{})
	u, _ := url.Parse(e.replicas[0].base)
	for _, n := range []int{maxBody + 1, 100 << 20} {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "POST /api/v1/auth/provider/%s/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", provPassword, n)
		status, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.Contains(status, " 413 ") {
			t.Fatalf("Content-Length %d and no body: %q %v, want 413 at once", n, status, err)
		}
	}
}

// TestPasswordLoginRefusedPairCostsTheAddressNothing: attempts a pair's
// limit refuses check no password, so they do not use up the address's
// budget: a user hammering their own forgotten password does not lock the
// rest of their office out.
func TestPasswordLoginRefusedPairCostsTheAddressNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	const perPair, perAddress = 2, 5
	e.setLoginLimit(LoginLimit{PerUserAddress: perPair, PerAddress: perAddress, Window: time.Hour})
	const office = "192.0.2.9"
	for range perPair {
		expect(t, e.loginFrom(0, office, provPassword, "carl", "forgot"), http.StatusUnauthorized, "carl's failure")
	}
	for range 20 {
		expect(t, e.loginFrom(1, office, provPassword, "carl", "forgot"), http.StatusTooManyRequests, "carl past his limit", 3600)
	}
	for i := range perAddress - perPair {
		expect(t, e.loginFrom(0, office, provPassword, fmt.Sprintf("colleague%d", i), "typo"), http.StatusUnauthorized, "a colleague's failure")
	}
	expect(t, e.loginFrom(0, office, provPassword, "someone", "typo"), http.StatusTooManyRequests, "the address's own limit", 3600)
}

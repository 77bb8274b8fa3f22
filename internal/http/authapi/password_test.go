package authapi

import (
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPasswordLoginLimit: failed password logins for one username (in any
// letter case, on any replica) reach the limit at exactly MaxFailures, then
// answer 429 with Retry-After until the window ends; a success clears them;
// and concurrent attempts cannot slip past the limit.
func TestPasswordLoginLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const max, window = 3, 15 * time.Minute
		for _, r := range e.replicas {
			r.h.LoginLimit = LoginLimit{MaxFailures: max, Window: window}
		}
		login := func(i int, user, password string) response {
			return e.postForm(e.api(i, "provider/"+provPassword+"/token"), url.Values{"username": {user}, "password": {password}})
		}
		expect429 := func(r response, what string, maxWait int) {
			t.Helper()
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("%s: %d %s, want 429", what, r.status, r.body)
			}
			if wait, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || wait < 1 || wait > maxWait {
				t.Fatalf("%s: Retry-After %q, want 1..%d seconds", what, r.header.Get("Retry-After"), maxWait)
			}
		}

		// Three failures under three spellings, on both replicas: each is 401.
		for i, user := range []string{"carl", "Carl", "CARL"} {
			if r := login(i%2, user, "wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d (%s): %d %s, want 401", i+1, user, r.status, r.body)
			}
		}
		// The next attempt, whatever the spelling and even with the right
		// password, is refused without checking it.
		expect429(login(1, "cArL", "pw"), "right password after the limit", int(window.Seconds()))
		e.clock.advance(window - time.Second)
		expect429(login(0, "carl", "pw"), "one second before the window ends", 1)
		e.clock.advance(time.Second)
		if r := login(0, "carl", "pw"); r.status != http.StatusOK {
			t.Fatalf("right password when the window has ended: %d %s", r.status, r.body)
		}
		// The success cleared the count: max-1 failures and a success, then
		// max failures again before the limit.
		for range max - 1 {
			login(1, "carl", "wrong")
		}
		if r := login(1, "carl", "pw"); r.status != http.StatusOK {
			t.Fatalf("right password after %d failures: %d %s", max-1, r.status, r.body)
		}
		for i := range max {
			if r := login(i%2, "carl", "wrong"); r.status != http.StatusUnauthorized {
				t.Fatalf("failure %d after a success: %d %s, want 401", i+1, r.status, r.body)
			}
		}
		expect429(login(0, "carl", "wrong"), "failure past the limit after a success", int(window.Seconds()))

		// Concurrent wrong passwords for a fresh window: exactly max are checked.
		e.clock.advance(window)
		const n = 30
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = login(i%2, "carl", "wrong").status })
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

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiledgo/server/internal/store/pgtest"
	"github.com/tiledgo/server/internal/testing/tcpproxy"
)

// proxiedPostgres is a fresh PostgreSQL database reached through a TCP
// proxy the test controls: the network can fail without the database
// stopping.
func proxiedPostgres(t *testing.T) (backend, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, u.Host)
	u.Host = p.Addr()
	return backend{name: "postgres", uri: u.String()}, p
}

// chainResult is what one refresh chain saw.
type chainResult struct {
	refreshed, unavailable int
	lost                   string // the answer that ended the chain, if one did
	token                  string // the refresh token it holds at the end
}

// TestMultiRefreshAcrossDatabaseBlackhole (issue 13, part 2): refresh
// chains run while the network to PostgreSQL is blackholed for longer than
// the statement bound, then healed. Refreshes in the outage answer 503 with
// Retry-After; some of their statements commit when the network heals,
// after the server gave up on them. Every chain must still refresh with the
// token it holds: a rotation whose request answered an error must not make
// that token "reused" and revoke the session.
func TestMultiRefreshAcrossDatabaseBlackhole(t *testing.T) {
	t.Parallel()
	db, proxy := proxiedPostgres(t)
	cfg := muConfig(db)
	addProvider(cfg, map[string]any{"provider": provDummy, "authenticator": "tiled.authenticators:DummyAuthenticator"})
	// The outage outlasts both the statement bound and the grace window, as
	// a 12 s outage does with the defaults (5 s and 10 s).
	const bound, grace = time.Second, time.Second
	cfg["server"] = map[string]any{"database_timeout": bound.String(), "refresh_grace_period": grace.String()}
	s := startMU(t, cfg)
	c := s.client(t)

	const chains = 12
	results := make([]chainResult, chains)
	for i := range results {
		results[i].token = tokensOf(t, c.login(provDummy, fmt.Sprintf("chain%d", i), "pw")).Refresh
	}
	refresh := func(token string) (reply, error) {
		body, _ := json.Marshal(map[string]string{"refresh_token": token})
		return rawDo(http.MethodPost, s.base+"/api/v1/auth/session/refresh",
			hdr("Content-Type", "application/json"), body, 4*bound)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		r := &results[i]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rep, err := refresh(r.token)
				switch {
				case err != nil:
					r.lost = "transport error: " + err.Error()
					return
				case rep.Status == http.StatusOK:
					var tp struct {
						RefreshToken string `json:"refresh_token"`
					}
					if json.Unmarshal(rep.Body, &tp) != nil || tp.RefreshToken == "" {
						r.lost = "200 without a refresh token: " + rep.String()
						return
					}
					r.token = tp.RefreshToken
					r.refreshed++
				case rep.Status == http.StatusServiceUnavailable:
					if ra, err := strconv.Atoi(rep.Header.Get("Retry-After")); err != nil || ra <= 0 {
						r.lost = "503 without a positive Retry-After: " + rep.String()
						return
					}
					r.unavailable++
					time.Sleep(50 * time.Millisecond) // a client honouring Retry-After would wait longer
				default:
					r.lost = rep.String()
					return
				}
			}
		})
	}

	time.Sleep(500 * time.Millisecond)
	proxy.Blackhole()
	time.Sleep(max(bound, grace)*5/2 + 500*time.Millisecond)
	proxy.Heal()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	unavailable := 0
	for i, r := range results {
		unavailable += r.unavailable
		if r.lost != "" {
			t.Errorf("chain %d ended after %d refreshes and %d 503s: %s", i, r.refreshed, r.unavailable, r.lost)
			continue
		}
		// The token each chain holds still works, and so does its access token.
		rep, err := refresh(r.token)
		if err != nil || rep.Status != http.StatusOK {
			t.Errorf("chain %d: final refresh: %v %s", i, err, rep)
			continue
		}
		tp := tokensOf(t, rep)
		if me := whoami(t, c, bearer(tp.Access)); me == nil {
			t.Errorf("chain %d: whoami with the final access token answered null", i)
		}
	}
	if unavailable == 0 {
		t.Fatal("no refresh answered 503 during the blackhole: the outage did not reach the refreshes")
	}
	if out := s.output(); strings.Contains(out, "refresh token reused after rotation") {
		t.Errorf("the server took a retry for reuse:\n%s", out)
	}
}

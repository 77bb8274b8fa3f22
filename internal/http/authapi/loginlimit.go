package authapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tiledgo/server/internal/http/forwarded"
	"github.com/tiledgo/server/internal/http/httperr"
	"github.com/tiledgo/server/internal/sessions"
)

// LoginLimit bounds password guessing without letting anyone lock a user
// out. Two counters live in the session database, so every replica counts
// the same attempts:
//
//   - per (provider, username in lower case, client address) pair: every
//     attempt is counted before the password is checked and the count is
//     cleared by a success. After two failures each further attempt waits
//     (500 ms, doubling, at most MaxDelay) before its password is checked;
//     at PerUserAddress the pair answers 429 until the window ends. Only
//     the address that fails slows down: the owner, elsewhere, logs in.
//   - per client address, over all usernames: counted before the check and
//     refunded on success, so it counts failures and attempts in flight,
//     never one office's legitimate logins behind a NAT; at PerAddress the
//     address answers 429. The address is checked first, and a refused
//     address writes nothing more, so one client trying 10,000 usernames
//     leaves O(PerAddress) rows.
//
// A zero limit disables its counter.
type LoginLimit struct {
	PerUserAddress int
	PerAddress     int
	Window         time.Duration
	// MaxDelay caps the growing delay; 0 disables it.
	MaxDelay time.Duration
	// Sleep waits d unless ctx ends first (nil: a timer); tests record.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Login delays: the first delayed attempt is the one after delayAfter
// failures of a pair, and waits firstDelay; each later one twice as long.
const (
	delayAfter = 2
	firstDelay = 500 * time.Millisecond
)

// loginDelay is the wait before checking the password of a pair that has
// failed prior times in the window.
func loginDelay(prior int, maxDelay time.Duration) time.Duration {
	if maxDelay <= 0 || prior < delayAfter {
		return 0
	}
	d := firstDelay
	for i := delayAfter; i < prior && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// addressKey is the address counter's key. IPv6 clients are counted per
// /64, the block one subscriber gets, so a client cannot pick a fresh
// address for each attempt.
func addressKey(c forwarded.Client) string { return "addr:" + addressGroup(c) }

func addressGroup(c forwarded.Client) string {
	a := c.Addr
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() && !a.Is4In6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.Unmap().String()
}

// pairKey is the pair counter's key: a hash, so that a long username
// cannot make an oversized index entry and no username (people type
// passwords into that field) is stored.
func pairKey(provider, username string, c forwarded.Client) string {
	h := sha256.Sum256([]byte(provider + "\x00" + strings.ToLower(username) + "\x00" + addressGroup(c)))
	return "pair:" + hex.EncodeToString(h[:])
}

// loginGate is one admitted password attempt: what it took from the
// counters, to be settled when the outcome is known.
type loginGate struct {
	h                *Handlers
	addrKey, pairKey string
	addr, pair       *sessions.LoginAttempt
}

// tooMany is the 429 for a window that ends at end.
func tooMany(msg string, now, end time.Time) *httperr.Error {
	wait := int64(math.Ceil(end.Sub(now).Seconds()))
	return httperr.New(http.StatusTooManyRequests, msg).WithHeader("Retry-After", strconv.FormatInt(max(wait, 1), 10))
}

// Messages of the login limits.
const (
	msgTooManyForUser    = "Too many failed login attempts. Try again later."
	msgTooManyForAddress = "Too many failed login attempts from this address. Try again later."
)

// admitLogin counts an attempt of username at provider from the request's
// client, address first, and waits the pair's delay. It returns the gate
// to settle, or a 429 (nothing more written) or a store error.
func (h *Handlers) admitLogin(ctx context.Context, provider, username string) (*loginGate, error) {
	l := h.LoginLimit
	client := forwarded.FromContext(ctx)
	g := &loginGate{h: h, addrKey: addressKey(client), pairKey: pairKey(provider, username, client)}
	now := h.Now().UTC()
	if l.PerAddress > 0 {
		a, err := h.Sessions.TakeLoginAttempt(ctx, g.addrKey, now, l.Window, l.PerAddress)
		if err != nil {
			return nil, fmt.Errorf("count login attempt of the address: %w", err)
		}
		if !a.Allowed {
			return nil, tooMany(msgTooManyForAddress, now, a.WindowEnd)
		}
		g.addr = &a
	}
	if l.PerUserAddress > 0 {
		a, err := h.Sessions.TakeLoginAttempt(ctx, g.pairKey, now, l.Window, l.PerUserAddress)
		if err != nil {
			g.refundAddress(ctx)
			return nil, fmt.Errorf("count login attempt: %w", err)
		}
		if !a.Allowed {
			// No password is checked, so no guess is made: the address
			// is not charged for it.
			g.refundAddress(ctx)
			return nil, tooMany(msgTooManyForUser, now, a.WindowEnd)
		}
		g.pair = &a
		if d := loginDelay(a.Count-1, l.MaxDelay); d > 0 {
			if err := h.sleep(ctx, d); err != nil {
				// The client went away (or the request timed out): the
				// refunds must still be written.
				g.abandon(context.WithoutCancel(ctx))
				return nil, err
			}
		}
	}
	return g, nil
}

func (h *Handlers) sleep(ctx context.Context, d time.Duration) error {
	if h.LoginLimit.Sleep != nil {
		return h.LoginLimit.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// failed settles a wrong password: both counts stay. It returns them (for
// the audit trail).
func (g *loginGate) failed() (pairAttempts, addressAttempts int) {
	if g.pair != nil {
		pairAttempts = g.pair.Count
	}
	if g.addr != nil {
		addressAttempts = g.addr.Count
	}
	return pairAttempts, addressAttempts
}

// succeeded settles a right password: the pair starts over and the
// address is refunded. Failing to write is logged, not answered: the
// login itself succeeded, and the counts only err on the strict side.
func (g *loginGate) succeeded(ctx context.Context) {
	if g.pair != nil {
		if err := g.h.Sessions.ResetLoginAttempts(ctx, g.pairKey); err != nil {
			g.h.Logger.WarnContext(ctx, "reset login attempts", "error", err)
		}
	}
	g.refundAddress(ctx)
}

// abandon settles an attempt whose password was not judged (the
// authenticator was unavailable, the client went away): nothing counts.
func (g *loginGate) abandon(ctx context.Context) {
	if g.pair != nil {
		if err := g.h.Sessions.RefundLoginAttempt(ctx, g.pairKey, g.pair.WindowEnd); err != nil {
			g.h.Logger.WarnContext(ctx, "refund login attempt", "error", err)
		}
	}
	g.refundAddress(ctx)
}

func (g *loginGate) refundAddress(ctx context.Context) {
	if g.addr == nil {
		return
	}
	if err := g.h.Sessions.RefundLoginAttempt(ctx, g.addrKey, g.addr.WindowEnd); err != nil {
		g.h.Logger.WarnContext(ctx, "refund login attempt of the address", "error", err)
	}
}

package view

import (
	"time"

	"github.com/google/uuid"

	"github.com/tiledgo/server/internal/identity"
)

// What each template renders (Page.Data). The types live beside the
// templates, so the packages that fill them (pages, api, authapi) and this
// package's tests meet one shape, checked by the compiler.

// Landing is the page at GET / ("landing").
type Landing struct {
	URL, API string
	// SignIn: there are providers to sign in with.
	SignIn bool
	// Public: anonymous reads are allowed.
	Public bool
	// SingleUserSignedIn: this browser holds the single-user key.
	SingleUserSignedIn bool
}

// Provider is a sign-in choice on the sign-in page.
type Provider struct {
	Name string
	// External: an OIDC provider ("Continue with NAME"); else a password
	// form.
	External bool
	// Message is the provider's confirmation_message, shown above it.
	Message string
}

// Login is the sign-in page ("login").
type Login struct {
	Providers  []Provider
	SingleUser bool
	// Next is where to land after signing in; Provider and Username refill
	// the form that failed.
	Next, Provider, Username string
}

// Account is an account page ("account"): the caller's own, or a principal
// an admin opened.
type Account struct {
	SingleUser bool
	// Self: the caller's own account, not a principal an admin opened.
	Self       bool
	ID         uuid.UUID
	Type       string
	Identities []identity.Identity
	Roles      []string
	Method     string
	Sessions   []SessionRow
	Keys       []KeyRow
	// CanEnd: Revoke buttons on sessions; CanRevokeKeys, CanCreateKey:
	// on keys (own account only).
	CanEnd, CanRevokeKeys, CanCreateKey bool
	ScopeChoices                        []string
	// Return is the page a Revoke comes back to.
	Return string
}

// SessionRow is one session on an account page.
type SessionRow struct {
	ID                         uuid.UUID
	Created, LastUsed, Expires time.Time
	Current                    bool
}

// KeyRow is one API key on an account page.
type KeyRow struct {
	FirstEight, Note string
	Scopes           []string
	Expires          *time.Time
	LastUsed         *time.Time
}

// KeyCreated shows a new API key's secret, once ("key_created").
type KeyCreated struct {
	Secret, FirstEight, Note string
	Scopes                   []string
	Expires                  *time.Time
}

// Principals is a page of the admins' list of principals ("principals").
type Principals struct {
	Rows                   []PrincipalRow
	Prev, Next             bool
	PrevOffset, NextOffset int
}

// PrincipalRow is one principal in that list.
type PrincipalRow struct {
	ID             uuid.UUID
	Type           string
	Identities     []string
	Roles          []string
	Sessions, Keys int
	LatestActivity *time.Time
}

// Device is one of the device-code pages ("device_form",
// "device_success", "device_failure").
type Device struct {
	// Code and State ride in the form's hidden fields.
	Code, State string
	// Message is the problem on the form page, the reason on the failure
	// page, and the provider's confirmation_message on the success page.
	Message  string
	Interval int
}

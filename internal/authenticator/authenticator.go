// Package authenticator checks who a person is, for the login routes. Each
// configured provider (Tiled's authentication.providers entry) has one
// authenticator: password ones (dictionary, dummy, PAM) check a username and
// password; external ones (OIDC, in package authenticator/oidc) send the
// person to an identity provider.
package authenticator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// ErrBadCredentials means the username or password is wrong. Which of the two
// is never said (Tiled: "Incorrect username or password").
var ErrBadCredentials = errors.New("incorrect username or password")

// ErrUnavailable means the authenticator could not check the credentials at
// all (PAM not built in, identity provider unreachable); the login is 503.
var ErrUnavailable = errors.New("authenticator unavailable")

// Password checks a username and password and returns the identity's id
// (usually the username, as Tiled's UserSessionState.user_name).
type Password interface {
	Authenticate(ctx context.Context, username, password string) (id string, err error)
}

// Dummy accepts any username with any password (Tiled's DummyAuthenticator),
// for demos and tests only.
type Dummy struct{}

// Authenticate implements Password.
func (Dummy) Authenticate(_ context.Context, username, _ string) (string, error) {
	if username == "" {
		return "", ErrBadCredentials
	}
	return username, nil
}

// Dictionary checks passwords against a fixed map (Tiled's
// DictionaryAuthenticator, users_to_passwords).
type Dictionary struct {
	// hashes holds SHA-256 of each password, so comparisons are constant
	// time whatever the password lengths, and plain passwords are not kept.
	hashes map[string][32]byte
}

// NewDictionary builds a Dictionary from users_to_passwords.
func NewDictionary(usersToPasswords map[string]string) *Dictionary {
	d := &Dictionary{hashes: make(map[string][32]byte, len(usersToPasswords))}
	for u, p := range usersToPasswords {
		d.hashes[u] = sha256.Sum256([]byte(p))
	}
	return d
}

// unknownUser is compared against when the user does not exist, so that the
// time taken does not reveal which usernames exist.
var unknownUser = sha256.Sum256([]byte("\x00no such user\x00"))

// Authenticate implements Password.
func (d *Dictionary) Authenticate(_ context.Context, username, password string) (string, error) {
	want, ok := d.hashes[username]
	if !ok {
		want = unknownUser
	}
	got := sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
		return "", ErrBadCredentials
	}
	return username, nil
}

package authenticator

import (
	"context"
	"errors"
	"testing"
)

func TestDictionary(t *testing.T) {
	d := NewDictionary(map[string]string{"alice": "secret1", "bob": ""})
	tests := []struct {
		user, pass string
		wantErr    error
	}{
		{"alice", "secret1", nil},
		{"alice", "secret2", ErrBadCredentials},
		{"alice", "", ErrBadCredentials},
		{"carol", "secret1", ErrBadCredentials},
		{"", "", ErrBadCredentials},
		// A user configured with an empty password logs in with it.
		{"bob", "", nil},
		{"bob", "x", ErrBadCredentials},
	}
	for _, tt := range tests {
		id, err := d.Authenticate(context.Background(), tt.user, tt.pass)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%q/%q: err = %v, want %v", tt.user, tt.pass, err, tt.wantErr)
		}
		if err == nil && id != tt.user {
			t.Errorf("%q: id = %q", tt.user, id)
		}
	}
}

func TestDummy(t *testing.T) {
	if id, err := (Dummy{}).Authenticate(context.Background(), "anyone", "anything"); err != nil || id != "anyone" {
		t.Fatalf("got %q, %v", id, err)
	}
	if _, err := (Dummy{}).Authenticate(context.Background(), "", "x"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("empty username: %v", err)
	}
}

package pam

import (
	"strings"
	"testing"
)

func TestCheckService(t *testing.T) {
	tests := []struct {
		service string
		ok      bool
	}{
		{"login", true},
		{"tiled", true},
		{"tiled-test_1.x", true},
		{"../login", false},
		{"/etc/pam.d/login", false},
		{"log in", false},
		{"login\x00", false},
		{"login\n", false},
		{".", false},
		{"..", false},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			err := checkService(tt.service)
			if (err == nil) != tt.ok {
				t.Fatalf("checkService(%q) = %v, want ok=%v", tt.service, err, tt.ok)
			}
		})
	}
}

func TestCheckInput(t *testing.T) {
	long := strings.Repeat("x", maxFieldBytes+1)
	tests := []struct {
		name, username, password string
		ok                       bool
	}{
		{"plain", "alice", "secret", true},
		{"longest allowed", strings.Repeat("u", maxFieldBytes), strings.Repeat("p", maxFieldBytes), true},
		{"empty username", "", "secret", false},
		{"empty password", "alice", "", false},
		{"NUL in username", "alice\x00bob", "secret", false},
		{"NUL in password", "alice", "secret\x00more", false},
		{"long username", long, "secret", false},
		{"long password", "alice", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkInput(tt.username, tt.password)
			if (err == nil) != tt.ok {
				t.Fatalf("checkInput = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// FuzzCheckInput holds checkInput to what reaches libpam: only non-empty
// strings without NUL that fit in a PAM response.
func FuzzCheckInput(f *testing.F) {
	f.Add("alice", "secret")
	f.Add("", "")
	f.Add("alice\x00root", "x")
	f.Add("alice", "pw\x00")
	f.Add("ünïcode", "pässwörd")
	f.Fuzz(func(t *testing.T, username, password string) {
		if checkInput(username, password) != nil {
			return
		}
		for _, s := range []string{username, password} {
			if s == "" || len(s) > maxFieldBytes || strings.ContainsRune(s, 0) {
				t.Fatalf("checkInput accepted %q", s)
			}
		}
	})
}

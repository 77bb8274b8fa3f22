package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/tiledgo/server/internal/access"
	"github.com/tiledgo/server/internal/authenticator/pam"
	"github.com/tiledgo/server/internal/config"
)

// checkConfigCmd validates config files the way serve would read them and
// reports every problem at once, each with its file, line and key path.
func checkConfigCmd(args []string, stdout, stderr io.Writer, getenv env) error {
	fs := newFlagSet("check-config", stderr)
	print := fs.Bool("print", false, "print the resolved configuration, secrets redacted")
	paths, err := parseInterleaved(fs, args)
	if err != nil {
		return usageError{err.Error()}
	}
	e := config.Env(getenv)
	cfg, err := config.Build(config.DefaultPaths(paths, e), e, config.Flags{})
	if err != nil {
		return reportConfig(stderr, err)
	}
	// What Load cannot know: whether the trees and the access policy the
	// config names can be built. Nothing is served and no network is used.
	var problems []string
	if _, err := buildTree(cfg, slog.New(slog.DiscardHandler)); err != nil {
		problems = append(problems, err.Error())
	}
	if ac := cfg.AccessControl; ac != nil && !cfg.SingleUser() {
		base := ""
		if len(cfg.Sources) > 0 {
			base = filepath.Dir(cfg.Sources[0])
		}
		policy, err := access.FromConfig(ac.Policy, ac.Args, access.Options{BaseDir: base})
		if err != nil {
			problems = append(problems, err.Error())
		} else if err := checkTagCoverage(cfg, policy); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, p := range cfg.Authentication.Providers {
		if p.Kind != config.KindPAM {
			continue
		}
		// A binary that cannot load libpam here would refuse to start.
		if err := pam.Available(); err != nil {
			problems = append(problems, fmt.Sprintf("authentication.providers[%s]: %v", p.Name, err))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "server: invalid configuration:\n%s\n", strings.Join(problems, "\n"))
		return errReported
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, k := range cfg.Ignored {
		fmt.Fprintf(stderr, "warning: %s: accepted but not used by this server\n", k)
	}
	if *print {
		fmt.Fprint(stdout, cfg.Redacted())
	}
	fmt.Fprintf(stdout, "ok: %s\n", strings.Join(cfg.Sources, ", "))
	return nil
}

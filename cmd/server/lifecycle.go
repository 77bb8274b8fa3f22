package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tiledgo/server/internal/http/api"
)

// lifecycle bounds how a replica stops: on SIGTERM it first reports not
// ready for drainDelay (so the load balancer stops routing to it), then
// finishes in-flight requests for at most shutdownTimeout.
type lifecycle struct {
	drainDelay      time.Duration
	shutdownTimeout time.Duration
	// readTimeout bounds reading one whole request, body included (the
	// request timeout; 0: none).
	readTimeout time.Duration
}

// Connection limits. A header is a few KiB; Go's default of 1 MiB let 100
// unfinished headers hold 150 MB until the header timeout. A client has
// readHeaderTimeout to send its headers (a slowloris is cut then) and an
// idle keep-alive connection is closed after idleTimeout.
const (
	maxHeaderBytes    = 64 << 10
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

// listenAndServe binds addr (so a port in use is reported before anything
// is printed), calls started with the bound address, and serves until ctx
// ends, then drains and shuts down within the lifecycle's deadlines.
func listenAndServe(ctx context.Context, logger *slog.Logger, addr string, srv *api.Server, lc lifecycle, started func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       lc.readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if started != nil {
		started(ln.Addr())
	}
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "drain_delay", lc.drainDelay.String(), "timeout", lc.shutdownTimeout.String())
	srv.Drain()
	if lc.drainDelay > 0 {
		time.Sleep(lc.drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), lc.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// Package reload serves POST /api/v1/reload: re-read the served trees (for
// example rescan a directory) and answer what changed. Who may call it is
// decided by the Authorize function it is given.
package reload

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/tiledgo/server/internal/tree"
)

// Handler serves the reload route.
type Handler struct {
	// Authorize returns who is reloading (for the log), or the refusal.
	Authorize func(c echo.Context) (string, error)
	// Reload rebuilds the trees and swaps them in.
	Reload func(ctx context.Context) (tree.Changes, error)
	Logger *slog.Logger

	// mu makes reloads of one replica one at a time: a second waits for
	// the first rather than scanning the same directories concurrently.
	mu sync.Mutex
}

// Register adds POST /reload to the API group.
func (h *Handler) Register(g *echo.Group) { g.POST("/reload", h.reload) }

func (h *Handler) reload(c echo.Context) error {
	who, err := h.Authorize(c)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, err := h.Reload(c.Request().Context())
	if err != nil {
		return err
	}
	h.Logger.InfoContext(c.Request().Context(), "trees reloaded", "by", who,
		"added", len(ch.Added), "removed", len(ch.Removed), "changed", len(ch.Changed))
	return c.JSON(http.StatusOK, ch)
}

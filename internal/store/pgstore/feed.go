package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
	"go.opentelemetry.io/otel"

	"github.com/tiledgo/server/internal/sessions"
	"github.com/tiledgo/server/internal/store/sqlstore"
)

// NotifyChannel is the LISTEN/NOTIFY channel of the revocation log: every
// transaction that appends to the log notifies it (delivered after commit),
// and each replica's heartbeat pings through it.
const NotifyChannel = "tiledgo_auth"

// Defaults of the feed (Config.Heartbeat, StaleAfter, ReconnectDelay).
const (
	DefaultHeartbeat      = 200 * time.Millisecond
	DefaultStaleAfter     = time.Second
	DefaultReconnectDelay = 250 * time.Millisecond
)

const (
	payloadLog  = "log:"
	payloadPing = "ping:"
)

// Follow implements sessions.LogFeed with pgxlisten on a connection of its
// own (not from the pool, which a busy replica may have exhausted). The
// follower is called from the listener's goroutine and from writers of this
// process (see Subscribe), so it must serialize its calls.
//
// A follower is in sync only while this can vouch that every commit wakes
// it. pgxlisten LISTENs before it calls the backlog hook, where the follower
// is rebuilt from the log; from then on each notification makes it catch up,
// on the listener's connection. A lost connection, a failed read or a
// heartbeat unanswered for StaleAfter (a connection that went silent without
// failing, as behind a dead middlebox) makes it Lost until the next rebuild.
// The heartbeat is a NOTIFY of its own through the pool: PostgreSQL delivers
// notifications in commit order, so when it comes back, every change
// committed before it was sent has been delivered.
func (s *Store) Follow(ctx context.Context, f sessions.LogFollower) error {
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	fd := &feed{s: s, f: f, ping: payloadPing + hex.EncodeToString(token) + ":"}
	l := &pgxlisten.Listener{
		Connect: fd.connect,
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				fd.lost(err)
			}
		},
		ReconnectDelay: s.feedCfg.ReconnectDelay,
	}
	l.Handle(NotifyChannel, fd)
	// This replica's own changes: caught up on the writing goroutine, before
	// the write returns, so the replica that revoked a session refuses it in
	// the very next request. Errors are left to the notification's turn.
	unsubscribe := s.Subscribe(func(ctx context.Context) { _ = f.CatchUp(ctx, s.Store) })
	defer unsubscribe()
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go fd.heartbeat(hctx)
	err := l.Listen(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ctx.Err()
	}
	return err
}

type feed struct {
	s    *Store
	f    sessions.LogFollower
	ping string // this feed's heartbeat payload prefix
	conn atomic.Pointer[pgx.Conn]
	// synced is set after a rebuild, cleared on loss; heard is the send
	// time (unix ns) of the newest heartbeat that came back, or of the
	// rebuild.
	synced atomic.Bool
	heard  atomic.Int64
}

func (fd *feed) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := fd.s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, mapErr(err)
	}
	fd.conn.Store(conn)
	return conn, nil
}

// lost marks the follower out of sync and drops the connection, so that
// pgxlisten reconnects and rebuilds it.
func (fd *feed) lost(err error) {
	fd.synced.Store(false)
	fd.f.Lost(err)
	if c := fd.conn.Swap(nil); c != nil {
		// Closing the socket from another goroutine is safe; pgx's own
		// Close is not. The blocked read fails and pgxlisten reconnects.
		if nc := c.PgConn().Conn(); nc != nil {
			_ = nc.Close()
		}
	}
}

// reader runs the log's queries on the listener's connection.
func (fd *feed) reader(conn *pgx.Conn) (sessions.LogReader, error) {
	return sqlstore.New(sqlstore.Config{
		DB:               connDB{querier{conn}},
		Dialect:          dialect,
		Tracer:           otel.Tracer(TracerName),
		StatementTimeout: fd.s.timeout,
	})
}

// HandleBacklog implements pgxlisten.BacklogHandler: LISTEN is in effect,
// so the follower is rebuilt from the log and nothing committed from now on
// can be missed.
func (fd *feed) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	start := time.Now()
	r, err := fd.reader(conn)
	if err == nil {
		err = fd.f.Resync(ctx, r)
	}
	if err != nil {
		err = fmt.Errorf("rebuild from the revocation log: %w", err)
		fd.lost(err)
		return err
	}
	fd.heard.Store(start.UnixNano())
	fd.synced.Store(true)
	return nil
}

// HandleNotification implements pgxlisten.Handler.
func (fd *feed) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	if rest, ok := strings.CutPrefix(n.Payload, fd.ping); ok {
		if ns, err := strconv.ParseInt(rest, 10, 64); err == nil && ns > fd.heard.Load() {
			fd.heard.Store(ns)
		}
		return nil
	}
	if strings.HasPrefix(n.Payload, payloadPing) || !fd.synced.Load() {
		return nil // another replica's heartbeat; or a rebuild is due anyway
	}
	// The common case: the entry follows what the follower has, and the
	// notification carries it, so no read is needed.
	if rest, ok := strings.CutPrefix(n.Payload, payloadLog); ok {
		if e, err := sessions.ParseRevocationPayload(rest); err == nil && fd.f.Apply(e) {
			return nil
		}
	}
	r, err := fd.reader(conn)
	if err == nil {
		err = fd.f.CatchUp(ctx, r)
	}
	if err != nil {
		err = fmt.Errorf("catch up with the revocation log: %w", err)
		fd.lost(err)
		return err
	}
	return nil
}

// heartbeat pings through the pool every Heartbeat and declares the feed
// lost when no ping has come back for StaleAfter.
func (fd *feed) heartbeat(ctx context.Context) {
	cfg := fd.s.feedCfg
	t := time.NewTicker(cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if fd.synced.Load() && now.Sub(time.Unix(0, fd.heard.Load())) > cfg.StaleAfter {
			fd.lost(fmt.Errorf("no heartbeat back from the database for %s", cfg.StaleAfter))
			continue
		}
		go func() {
			pctx, cancel := context.WithTimeout(ctx, cfg.StaleAfter)
			defer cancel()
			// Errors show up as a heartbeat that does not come back.
			_, _ = fd.s.pool.Exec(pctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fd.ping+strconv.FormatInt(now.UnixNano(), 10))
		}()
	}
}

// connDB is a sqlstore.DB over one connection, for reads only.
type connDB struct{ querier }

var errReadOnly = errors.New("pgstore: the feed's connection only reads the log")

func (connDB) InTx(context.Context, func(sqlstore.Querier) error) error { return errReadOnly }
func (connDB) Exclusive(context.Context, int64, func(sqlstore.Querier) error) (bool, error) {
	return false, errReadOnly
}
func (connDB) OrderRevocations(context.Context, sqlstore.Querier) error { return errReadOnly }
func (connDB) Notify(context.Context, sqlstore.Querier, sessions.Revocation) error {
	return errReadOnly
}

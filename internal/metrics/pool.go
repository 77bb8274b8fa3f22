package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiledgo/server/internal/sessions"
)

// poolCollector reads the session database's connection pool at each
// scrape (pgxpool keeps the counters; nothing is recorded per request).
type poolCollector struct {
	stats func() (sessions.PoolStats, bool)

	acquired, idle, total, max, constructing *prometheus.Desc
	acquires, emptyAcquires, canceled        *prometheus.Desc
	acquireSeconds                           *prometheus.Desc
}

// ObservePool exposes the pool that stats reports (nothing when it reports
// false: SQLite has no pool).
func (m *Metrics) ObservePool(stats func() (sessions.PoolStats, bool)) {
	if m == nil {
		return
	}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("tiled_db_pool_"+name, help, nil, nil)
	}
	m.reg.MustRegister(&poolCollector{
		stats:          stats,
		acquired:       d("acquired_connections", "Connections checked out of the session database pool."),
		idle:           d("idle_connections", "Idle connections in the session database pool."),
		total:          d("connections", "Connections in the session database pool, any state."),
		max:            d("max_connections", "Size limit of the session database pool."),
		constructing:   d("constructing_connections", "Connections being opened."),
		acquires:       d("acquires_total", "Connections acquired from the pool."),
		emptyAcquires:  d("waited_acquires_total", "Acquires that waited because no connection was idle."),
		canceled:       d("canceled_acquires_total", "Acquires abandoned while waiting (request deadline, client gone)."),
		acquireSeconds: d("acquire_seconds_total", "Time spent acquiring connections."),
	})
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.constructing,
		c.acquires, c.emptyAcquires, c.canceled, c.acquireSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.stats()
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.Acquired))
	gauge(c.idle, float64(s.Idle))
	gauge(c.total, float64(s.Total))
	gauge(c.max, float64(s.Max))
	gauge(c.constructing, float64(s.Constructing))
	counter(c.acquires, float64(s.Acquires))
	counter(c.emptyAcquires, float64(s.EmptyAcquires))
	counter(c.canceled, float64(s.CanceledAcquires))
	counter(c.acquireSeconds, s.AcquireDuration.Seconds())
}

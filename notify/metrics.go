package notify

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus metrics, per channel.
type metrics struct {
	queuedTotal *prometheus.CounterVec
	queued      *prometheus.GaugeVec
	delivered   *prometheus.CounterVec
	failed      *prometheus.CounterVec
	died        *prometheus.CounterVec
	dead        *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ch := []string{"channel"}
	m := &metrics{
		queuedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "candor_notify_queued_total",
			Help: "Deliveries created from outbox rows."}, ch),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "candor_notify_queued",
			Help: "Deliveries waiting to be delivered (pending), all replicas."}, ch),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "candor_notify_delivered_total",
			Help: "Deliveries delivered by this replica."}, ch),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "candor_notify_failed_total",
			Help: "Failed delivery attempts by this replica, rate limits included."}, ch),
		died: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "candor_notify_dead_total",
			Help: "Deliveries that this replica gave up on (dead)."}, ch),
		dead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "candor_notify_dead",
			Help: "Dead deliveries waiting for a person to retry them, all replicas."}, ch),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "candor_notify_delivery_seconds",
			Help:    "From the change's commit (its outbox row) to its delivery.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}}, ch),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queuedTotal, m.queued, m.delivered, m.failed, m.died, m.dead, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("notify: metrics registered twice on one registry: %w", err)
			}
			return nil, fmt.Errorf("notify: metrics: %w", err)
		}
	}
	return m, nil
}

// init makes every series of a channel exist from the start, at zero.
func (m *metrics) init(ch string) {
	m.queuedTotal.WithLabelValues(ch)
	m.queued.WithLabelValues(ch)
	m.delivered.WithLabelValues(ch)
	m.failed.WithLabelValues(ch)
	m.died.WithLabelValues(ch)
	m.dead.WithLabelValues(ch)
	m.latency.WithLabelValues(ch)
}

package reverse

import (
	"github.com/prometheus/client_golang/prometheus"

	"time"
)

// Metrics are the reverse proxy's Prometheus metrics. Per-route series
// are created when a configuration is applied, so the hot path only adds.
type Metrics struct {
	requests  *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	unrouted4 [6]prometheus.Counter
}

// routeMetrics are one route's series.
type routeMetrics struct {
	byClass  [6]prometheus.Counter // 1xx..5xx, [0] for 499 and others
	bytesOut prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics creates the reverse proxy's metrics and registers them with
// reg. A nil reg keeps them unregistered (counted, never exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_reverse_requests_total", Help: "Requests handled by the reverse proxy, by route and status class.",
		}, []string{"route", "code"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_reverse_response_bytes_total", Help: "Response body bytes sent to clients, by route.",
		}, []string{"route"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_reverse_backend_failures_total", Help: "Requests that no backend answered, by route and cause.",
		}, []string{"route", "cause"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "waygate_reverse_request_duration_seconds", Help: "Time to serve a request, by route.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"route"}),
	}
	for i := range m.unrouted4 {
		m.unrouted4[i] = m.requests.WithLabelValues("", classLabel(i))
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.bytesOut, m.failures, m.duration)
	}
	return m
}

var classLabels = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func classLabel(i int) string { return classLabels[i] }

func statusClass(status int) int {
	if status >= 100 && status < 600 && status != statusClientClosed {
		return status / 100
	}
	return 0
}

// routes creates the series of a new configuration's routes.
func (m *Metrics) routes(rts []*route) {
	for _, rt := range rts {
		rm := &routeMetrics{
			bytesOut: m.bytesOut.WithLabelValues(rt.cfg.Name),
			duration: m.duration.WithLabelValues(rt.cfg.Name),
		}
		for i := range rm.byClass {
			rm.byClass[i] = m.requests.WithLabelValues(rt.cfg.Name, classLabel(i))
		}
		rt.metrics = rm
	}
}

func (m *Metrics) observe(rs *reqState, status int, bytes int64, d time.Duration) {
	rt := rs.route
	if rt == nil || rt.metrics == nil {
		m.unrouted4[statusClass(status)].Inc()
		return
	}
	rt.metrics.byClass[statusClass(status)].Inc()
	rt.metrics.bytesOut.Add(float64(bytes))
	rt.metrics.duration.Observe(d.Seconds())
	if rs.err != nil && rs.denied == "" {
		m.failures.WithLabelValues(rt.cfg.Name, rs.cause.String()).Inc()
	}
}

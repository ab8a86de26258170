package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"waygate/filter"
	"waygate/proxy/upstream"
)

// denyReason says why the proxy itself refused a request.
type denyReason int

const (
	denyNone denyReason = iota
	denyClient
	denyAuth
	denyPort
	denyBadRequest
	denyConnLimit
	denyTunnelLimit
	denyPolicy
)

var denyNames = [...]string{"", "client", "auth", "port", "bad_request", "connection_limit", "tunnel_limit", "policy"}

// Metrics are the forward proxy's Prometheus metrics. Series are created
// up front so that the hot path only increments.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    map[string]prometheus.Observer
	bytesIn     map[string]prometheus.Counter
	bytesOut    map[string]prometheus.Counter
	deniedBy    [len(denyNames)]prometheus.Counter
	upstreamErr []prometheus.Counter
	tunnelsOpen prometheus.Gauge
	connsOpen   prometheus.Gauge
	statusCache map[string]*[6]prometheus.Counter
	decisions   [4]prometheus.Counter // by filter.Action
}

// NewMetrics creates the proxy's metrics and registers them with reg. A nil
// reg keeps them unregistered (still counted, never exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "waygate_proxy_requests_total", Help: "Requests handled by the forward proxy, by kind and status class.",
		}, []string{"kind", "code"}),
		tunnelsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waygate_proxy_tunnels_open", Help: "CONNECT tunnels open now.",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waygate_proxy_connections_open", Help: "Client connections open now.",
		}),
		duration:    map[string]prometheus.Observer{},
		bytesIn:     map[string]prometheus.Counter{},
		bytesOut:    map[string]prometheus.Counter{},
		statusCache: map[string]*[6]prometheus.Counter{},
	}
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "waygate_proxy_request_duration_seconds",
		Help:    "Time from request to the end of the response (tunnels: until closed).",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"kind"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waygate_proxy_bytes_total", Help: "Body and tunnel bytes, by kind and direction (up: client to origin).",
	}, []string{"kind", "direction"})
	denied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waygate_proxy_denied_total", Help: "Requests and connections the proxy refused, by reason.",
	}, []string{"reason"})
	upErr := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waygate_proxy_upstream_errors_total", Help: "Failures reaching origins, by cause.",
	}, []string{"cause"})
	for _, kind := range []string{"http", "connect"} {
		m.duration[kind] = dur.WithLabelValues(kind)
		m.bytesIn[kind] = bytes.WithLabelValues(kind, "up")
		m.bytesOut[kind] = bytes.WithLabelValues(kind, "down")
		var sc [6]prometheus.Counter
		for i := range sc {
			sc[i] = m.requests.WithLabelValues(kind, strconv.Itoa(i)+"xx")
		}
		m.statusCache[kind] = &sc
	}
	for i := 1; i < len(denyNames); i++ {
		m.deniedBy[i] = denied.WithLabelValues(denyNames[i])
	}
	for _, c := range upstream.AllCauses() {
		m.upstreamErr = append(m.upstreamErr, upErr.WithLabelValues(c.String()))
	}
	dec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waygate_policy_decisions_total", Help: "Policy decisions, by action (monitor: allowed, would have been blocked).",
	}, []string{"action"})
	for i := range m.decisions {
		m.decisions[i] = dec.WithLabelValues(filter.Action(i).String())
	}
	if reg != nil {
		reg.MustRegister(m.requests, dur, bytes, denied, upErr, m.tunnelsOpen, m.connsOpen, dec)
	}
	return m
}

func (m *Metrics) observe(kind string, status int, d time.Duration, up, down int64) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	m.statusCache[kind][class].Inc()
	m.duration[kind].Observe(d.Seconds())
	if up > 0 {
		m.bytesIn[kind].Add(float64(up))
	}
	if down > 0 {
		m.bytesOut[kind].Add(float64(down))
	}
}

func (m *Metrics) denied(r denyReason) {
	if r > denyNone && int(r) < len(m.deniedBy) {
		m.deniedBy[r].Inc()
	}
}

func (m *Metrics) upstreamError(c upstream.Cause) {
	if int(c) >= 0 && int(c) < len(m.upstreamErr) {
		m.upstreamErr[c].Inc()
	}
}

func (m *Metrics) decision(a filter.Action) {
	if int(a) < len(m.decisions) {
		m.decisions[a].Inc()
	}
}

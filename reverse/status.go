package reverse

import "time"

// Status is a snapshot of the reverse proxy for the admin UI, with the
// JSON names of GET /api/v1/reverse.
type Status struct {
	Routes []RouteStatus `json:"routes"`
}

// RouteStatus is one route's configuration summary and live state.
type RouteStatus struct {
	Name       string   `json:"name"`
	Hosts      []string `json:"hosts"`
	PathPrefix string   `json:"path_prefix"`
	Balance    string   `json:"balance"`
	// Requests counts requests routed here since the route was last
	// loaded; InFlight those being served now.
	Requests uint64 `json:"requests"`
	InFlight int64  `json:"in_flight"`
	// Errors counts requests no backend answered; LastError is the latest
	// such error ("" if none) and LastErrorAt its time.
	Errors      uint64          `json:"errors"`
	LastError   string          `json:"last_error"`
	LastErrorAt time.Time       `json:"last_error_at"`
	Backends    []BackendStatus `json:"backends"`
}

// Status returns the routes of the running configuration, in config
// order, with their backends' health.
func (s *Server) Status() Status {
	st := s.state.Load()
	out := Status{Routes: make([]RouteStatus, 0, len(st.routes))}
	for _, rt := range st.routes {
		rs := RouteStatus{
			Name: rt.cfg.Name, Hosts: rt.cfg.Match.Hosts, PathPrefix: rt.cfg.Match.PathPrefix,
			Balance: rt.cfg.Balance, Requests: rt.requests.Load(), InFlight: rt.inFlight.Load(),
		}
		if rs.Balance == "" {
			rs.Balance = "round_robin"
		}
		rt.errMu.Lock()
		rs.Errors, rs.LastError, rs.LastErrorAt = rt.errors, rt.lastErr, rt.lastErrAt
		rt.errMu.Unlock()
		if rt.pool != nil {
			rs.Backends = rt.pool.Status()
		}
		out.Routes = append(out.Routes, rs)
	}
	return out
}

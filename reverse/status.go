package reverse

import "time"

// Status is a snapshot of the reverse proxy for the admin UI.
type Status struct {
	Routes []RouteStatus
}

// RouteStatus is one route's configuration summary and live state.
type RouteStatus struct {
	Name       string
	Hosts      []string
	PathPrefix string
	Balance    string
	// Requests counts requests routed here since the route was last
	// loaded; InFlight those being served now.
	Requests uint64
	InFlight int64
	// Errors counts requests no backend answered; LastError is the latest
	// such error ("" if none) and LastErrorAt its time.
	Errors      uint64
	LastError   string
	LastErrorAt time.Time
	Backends    []BackendStatus
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

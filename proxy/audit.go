package proxy

import (
	"net/http"
	"time"

	"waygate/audit"
)

// record writes the request's audit event. It runs in finish, so no path
// through the proxy skips it.
func (s *Server) record(rs *reqState, rw *responseRecorder, r *http.Request, status int, d time.Duration) {
	e := &audit.Event{
		Time:      rs.start,
		Duration:  d,
		Kind:      audit.KindHTTP,
		RequestID: rs.id,
		Client:    rs.client.String(),
		User:      rs.user,
		Method:    r.Method,
		Status:    status,
		BytesIn:   rs.bytesUp,
		BytesOut:  rw.bytes,
		UserAgent: r.UserAgent(),
		Upstream:  rs.upstream,
	}
	if rs.kind == "connect" {
		e.Kind = audit.KindConnect
		e.Host, e.Port = splitTarget(r.Host, "https")
	} else {
		e.Scheme = r.URL.Scheme
		e.Host, e.Port = splitTarget(r.URL.Host, r.URL.Scheme)
		e.Path = r.URL.Path
		e.Query = r.URL.RawQuery
		e.ContentType = rw.Header().Get("Content-Type")
	}
	if rs.err != nil {
		e.Error = rs.cause.String()
	}
	if d := rs.decision; d != nil {
		e.Action = d.Action.String()
		e.Rule = d.Rule
		e.Categories = d.Categories
		e.Category = d.Category
		e.Entry = d.Entry
		e.Source = d.Source
		e.Reason = d.Reason.String()
		e.Policy = d.PolicyVersion
		e.Host = d.Host // the normalized host the policy saw
		e.Groups = rs.st.filter.Groups(rs.client, rs.user)
	} else if rs.denied != denyNone {
		e.Action = "deny"
		e.Reason = denyNames[rs.denied]
	}
	s.audit.Record(e)
}

// splitTarget splits host[:port], filling in the scheme's port. Malformed
// input is kept whole as the host.
func splitTarget(hostport, scheme string) (string, uint16) {
	host, port, err := targetOf(hostport, scheme)
	if err != nil {
		return hostport, 0
	}
	return host, port
}

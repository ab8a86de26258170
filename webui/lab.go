package webui

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Lab runs the proxy lab's two live demonstrations for the lab page: a
// request through the gateway's forward proxy to a built-in echo origin,
// and a request to a built-in demo app through the gateway's reverse
// proxy. Each makes real traffic, audited like any other.
type Lab interface {
	// RunForward makes the forward demonstration and returns both sides
	// (what the client sent, what the origin saw) as a JSON-marshalable
	// value. A demonstration that fails (the proxy refuses, a timeout) is
	// a result, saying so; an error means the lab itself failed.
	RunForward(ctx context.Context) (any, error)
	// RunReverse makes the reverse demonstration and returns both sides
	// (what the client saw, what the app saw), as RunForward does.
	RunReverse(ctx context.Context) (any, error)
}

// labData is what the lab page shows.
type labData struct {
	pageData
	// Available is false when the gateway has no lab (Options.Lab nil).
	Available bool
	// CanRun is true for those who may make traffic: admins with a
	// session.
	CanRun bool
}

// labPage is GET /lab: the proxy lab. The demonstrations are run by
// static/lab.js through POST /api/v1/lab/forward and /api/v1/lab/reverse,
// and its live counters come from /api/v1/events.
func (s *Server) labPage(c *gin.Context) {
	d := labData{pageData: page(c, "Proxy lab"), Available: s.opts.Lab != nil, CanRun: who(c).canWrite()}
	s.render(c, http.StatusOK, "lab.html", d)
}

// labForward is POST /api/v1/lab/forward: it runs the forward
// demonstration and answers {"forward": result}; see Lab.RunForward. It
// takes no parameters, and ignores a body.
func (s *Server) labForward(c *gin.Context) {
	s.runLab(c, "forward", func(ctx context.Context, l Lab) (any, error) { return l.RunForward(ctx) })
}

// labReverse is POST /api/v1/lab/reverse: the reverse demonstration,
// answered as {"reverse": result}; see Lab.RunReverse.
func (s *Server) labReverse(c *gin.Context) {
	s.runLab(c, "reverse", func(ctx context.Context, l Lab) (any, error) { return l.RunReverse(ctx) })
}

// runLab runs one demonstration and answers {key: result}.
func (s *Server) runLab(c *gin.Context, key string, run func(context.Context, Lab) (any, error)) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Lab == nil {
		unavailable(c, "the proxy lab")
		return
	}
	v, err := run(c.Request.Context(), s.opts.Lab)
	if err != nil {
		s.internal(c, "running the "+key+" demonstration", err)
		return
	}
	s.snapshot(c, key, v)
}

package webui

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// ReverseStatus gives the state of the reverse proxy for GET
// /api/v1/reverse.
type ReverseStatus interface {
	// ReverseStatus returns a JSON-marshalable snapshot: routes, backends
	// and their health.
	ReverseStatus(ctx context.Context) (any, error)
}

// CategoryLister gives the categories of the policy for GET
// /api/v1/categories.
type CategoryLister interface {
	// Categories returns a JSON-marshalable list of the categories with
	// their sources, entry counts, last refresh and errors.
	Categories(ctx context.Context) (any, error)
}

// reverseStatus is GET /api/v1/reverse.
func (s *Server) reverseStatus(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Reverse == nil {
		unavailable(c, "reverse proxy status")
		return
	}
	v, err := s.opts.Reverse.ReverseStatus(c.Request.Context())
	if err != nil {
		s.internal(c, "reading the reverse proxy status", err)
		return
	}
	s.snapshot(c, "reverse", v)
}

// categories is GET /api/v1/categories.
func (s *Server) categories(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Categories == nil {
		unavailable(c, "category listing")
		return
	}
	v, err := s.opts.Categories.Categories(c.Request.Context())
	if err != nil {
		s.internal(c, "listing the categories", err)
		return
	}
	if v == nil {
		v = []any{}
	}
	s.snapshot(c, "categories", v)
}

// snapshot answers {key: v}, marshaled here so that a value that cannot
// be marshaled is a logged 500, not a half-written answer.
func (s *Server) snapshot(c *gin.Context, key string, v any) {
	body, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		s.internal(c, "encoding the "+key+" answer", err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

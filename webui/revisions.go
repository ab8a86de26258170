package webui

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Revision is one saved version of the config file.
type Revision struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author"`
	Comment string    `json:"comment"`
	// SHA256 is the hex digest of Config.
	SHA256 string `json:"sha256"`
	// Config is the file's text; empty in lists.
	Config string `json:"config,omitempty"`
}

// RevisionSource keeps the config file's revisions and can make an older
// one current again.
type RevisionSource interface {
	// Revisions lists revisions newest first, older than before (0: from
	// the newest), at most limit, without their Config.
	Revisions(ctx context.Context, before int64, limit int) ([]Revision, error)
	// Revision returns one revision with its Config, or an error wrapping
	// ErrNotFound.
	Revision(ctx context.Context, id int64) (Revision, error)
	// Rollback makes revision id the config file again, checked like any
	// save (an *InvalidPolicyError when it no longer applies, ErrConflict
	// when the file cannot be edited), recorded as a new revision by author,
	// and returns that new revision.
	Rollback(ctx context.Context, author string, id int64) (Revision, error)
}

// maxDiffCells bounds the line-diff table (lines of one revision times
// lines of the other); larger pairs are shown without a diff.
const maxDiffCells = 4 << 20

// listRevisions is GET /api/v1/revisions?before=&limit=.
func (s *Server) listRevisions(c *gin.Context) {
	v, ok := queryParams(c, "before", "limit")
	if !ok {
		return
	}
	if s.opts.Revisions == nil {
		unavailable(c, "config revisions")
		return
	}
	limit, ok := intParam(c, v, "limit", 1, 500, 50)
	if !ok {
		return
	}
	before, ok := intParam(c, v, "before", 0, math.MaxInt32, 0)
	if !ok {
		return
	}
	revs, err := s.opts.Revisions.Revisions(c.Request.Context(), int64(before), limit)
	if err != nil {
		s.internal(c, "listing config revisions", err)
		return
	}
	if revs == nil {
		revs = []Revision{}
	}
	c.JSON(http.StatusOK, gin.H{"revisions": revs})
}

// revisionID parses the :id of a revision route.
func revisionID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		fail(c, http.StatusBadRequest, "revision id: want a positive whole number, not %q", clip(c.Param("id"), 32))
		return 0, false
	}
	return id, true
}

// getRevision is GET /api/v1/revisions/:id: the revision's file and its
// line diff against the revision before it.
func (s *Server) getRevision(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Revisions == nil {
		unavailable(c, "config revisions")
		return
	}
	id, ok := revisionID(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	rev, err := s.opts.Revisions.Revision(ctx, id)
	if errors.Is(err, ErrNotFound) {
		fail(c, http.StatusNotFound, "no config revision %d", id)
		return
	}
	if err != nil {
		s.internal(c, "reading a config revision", err)
		return
	}
	var prevText string
	var prevID int64
	if older, err := s.opts.Revisions.Revisions(ctx, id, 1); err != nil {
		s.internal(c, "reading a config revision", err)
		return
	} else if len(older) == 1 {
		prev, err := s.opts.Revisions.Revision(ctx, older[0].ID)
		if err != nil {
			s.internal(c, "reading a config revision", err)
			return
		}
		prevText, prevID = prev.Config, prev.ID
	}
	diff, ok := lineDiff(prevText, rev.Config)
	resp := gin.H{"revision": rev, "previous": prevID}
	if ok {
		resp["diff"] = diff
	} else {
		resp["diff_omitted"] = "the files are too large to compare here"
	}
	c.JSON(http.StatusOK, resp)
}

// rollback is POST /api/v1/revisions/:id/rollback (admin).
func (s *Server) rollback(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Revisions == nil {
		unavailable(c, "config revisions")
		return
	}
	id, ok := revisionID(c)
	if !ok {
		return
	}
	p := who(c)
	rev, err := s.opts.Revisions.Rollback(c.Request.Context(), p.User, id)
	detail, _ := json.Marshal(map[string]any{"to_revision": id, "new_revision": rev.ID})
	var invalid *InvalidPolicyError
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no config revision %d", id)
		return
	case errors.Is(err, ErrConflict):
		s.record(c, p.User, "config_rollback", http.StatusConflict, "conflict", string(detail))
		fail(c, http.StatusConflict, "the config file cannot be changed: %s", clip(err.Error(), 512))
		return
	case errors.As(err, &invalid):
		s.record(c, p.User, "config_rollback", http.StatusUnprocessableEntity, clip(err.Error(), 1024), string(detail))
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": "that revision no longer applies", "problems": invalid.Problems})
		return
	case err != nil:
		s.record(c, p.User, "config_rollback", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "rolling back the config", err)
		return
	}
	s.record(c, p.User, "config_rollback", http.StatusOK, "", string(detail))
	c.JSON(http.StatusOK, gin.H{"revision": rev})
}

// DiffLine is one line of a diff: Op is " " (both), "-" (only in the
// older file) or "+" (only in the newer).
type DiffLine struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

// lineDiff is the shortest line diff from a to b (longest common
// subsequence). It reports false when the files are too large for the
// quadratic table.
func lineDiff(a, b string) ([]DiffLine, bool) {
	al, bl := splitLines(a), splitLines(b)
	n, m := len(al), len(bl)
	if (n+1)*(m+1) > maxDiffCells {
		return nil, false
	}
	// lcs[i][j]: length of the LCS of al[i:] and bl[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	out := []DiffLine{}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case al[i] == bl[j]:
			out = append(out, DiffLine{" ", al[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, DiffLine{"-", al[i]})
			i++
		default:
			out = append(out, DiffLine{"+", bl[j]})
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, DiffLine{"-", al[i]})
	}
	for ; j < m; j++ {
		out = append(out, DiffLine{"+", bl[j]})
	}
	return out, true
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

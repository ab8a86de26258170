package webui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// adminLogData is what the admin log page shows.
type adminLogData struct {
	pageData
	// CanRollback shows the rollback button: an admin in a browser
	// session (the button's POST needs the session's CSRF token; auditors
	// and read-only tokens may not change anything).
	CanRollback bool
}

// adminLogPage is GET /admin-log: who changed what. The page is a shell:
// static/adminlog.js lists the config revisions (GET /api/v1/revisions),
// shows a revision's diff (GET /api/v1/revisions/:id), rolls back (POST
// /api/v1/revisions/:id/rollback, after an in-page confirmation) and
// lists the admin events (GET /api/v1/logs?kind=admin), paging both.
func (s *Server) adminLogPage(c *gin.Context) {
	p := who(c)
	s.render(c, http.StatusOK, "adminlog.html", adminLogData{
		pageData:    page(c, "Admin log"),
		CanRollback: p.Session && p.canWrite(),
	})
}

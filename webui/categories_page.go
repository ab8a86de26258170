package webui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// categoriesData is what the categories page is rendered with.
type categoriesData struct {
	pageData
	// Editable is true for an admin in a browser session: the page then
	// offers the editors of the custom lists and the form that adds a
	// category. False (auditors, API tokens) shows everything read-only;
	// the API refuses their changes anyway.
	Editable bool
}

// categoriesPage is GET /categories: the shell of the categories page.
// static/categories.js fills it from GET /api/v1/categories (sources,
// counts, refreshes, errors) and GET /api/v1/policy (the inline entries it
// edits), and saves through PUT /api/v1/policy.
func (s *Server) categoriesPage(c *gin.Context) {
	p := who(c)
	d := categoriesData{pageData: page(c, "Categories"), Editable: p.Session && p.canWrite()}
	s.render(c, http.StatusOK, "categories.html", d)
}

package webui

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// policyActions are the actions a rule or the default may take, in the
// order the page offers them.
var policyActions = []string{"allow", "block", "warn", "monitor"}

// explainForm is the "test a URL" form of the policy page, filled in from
// the page's query string (url, user, client, at) so that a test is a
// bookmarkable link, and one the logs page can make. Empty fields are not
// sent: empty At means now, empty Client and User mean "not given".
type explainForm struct {
	URL, User, Client, At string
}

// policyData is what the policy page shows.
type policyData struct {
	pageData
	// Editable is set when the viewer may change the policy: an admin in
	// a browser session (which has the CSRF token a save needs). Clear,
	// the page shows the policy read-only: controls disabled, no save.
	Editable bool
	// Actions are the choices of the default action select. None is
	// selected: policy.js selects the loaded policy's.
	Actions []option
	// Test is the test-a-URL form as given in the query string.
	Test explainForm
}

// policyPage is GET /policy: the shell of the policy editor. policy.js
// loads the policy from GET /api/v1/policy and the known categories from
// GET /api/v1/categories, saves with PUT /api/v1/policy (which validates
// and refuses auditors) and tests URLs with GET /api/v1/explain; the page
// itself reads nothing but who is logged in and its query string.
func (s *Server) policyPage(c *gin.Context) {
	q := func(name string) string { return clip(c.Query(name), maxParamLen) }
	p := who(c)
	d := policyData{
		pageData: page(c, "Policy"),
		Editable: p.canWrite() && p.Session,
		Test:     explainForm{URL: clip(c.Query("url"), maxURLParamLen), User: q("user"), Client: q("client"), At: q("at")},
	}
	for _, a := range policyActions {
		d.Actions = append(d.Actions, option{Value: a, Label: a})
	}
	s.render(c, http.StatusOK, "policy.html", d)
}

package console

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// route is one endpoint and the least role that may use it. Every route of
// the console and the API is in the table, which the role test walks.
type route struct {
	method, path string
	role         Role // "" for the sign-in pages, which need no session
	api          bool // bearer token instead of a session cookie
	h            func(w http.ResponseWriter, r *http.Request, p *principal) error
}

func (c *Console) routeTable() []route {
	return []route{
		// Signing in and enrolment: no session yet.
		{method: "GET", path: "/admin/login", h: c.loginForm},
		{method: "POST", path: "/admin/login", h: c.login},
		{method: "GET", path: "/admin/login/code", h: c.codeForm},
		{method: "POST", path: "/admin/login/code", h: c.code},
		{method: "GET", path: "/admin/enrol/{token}", h: c.enrolForm},
		{method: "POST", path: "/admin/enrol/{token}", h: c.enrol},

		// Reading: every operator.
		{method: "GET", path: "/admin/{$}", role: Viewer, h: c.home},
		{method: "GET", path: "/admin/incidents", role: Viewer, h: c.incidentList},
		{method: "GET", path: "/admin/incidents/{id}", role: Viewer, h: c.incidentDetail},
		{method: "GET", path: "/admin/maintenance", role: Viewer, h: c.maintenanceList},
		{method: "GET", path: "/admin/components", role: Viewer, h: c.componentList},
		{method: "GET", path: "/admin/deliveries", role: Viewer, h: c.deliveryList},
		{method: "GET", path: "/admin/webhooks", role: Viewer, h: c.webhookList},
		{method: "GET", path: "/admin/account", role: Viewer, h: c.account},
		{method: "POST", path: "/admin/account/devices/{id}/revoke", role: Viewer, h: c.revokeOwnDevice},
		{method: "POST", path: "/admin/account/devices/revoke", role: Viewer, h: c.revokeOwnDevices},
		{method: "POST", path: "/admin/account/recovery-codes", role: Viewer, h: c.regenerateRecoveryCodes},
		{method: "POST", path: "/admin/logout", role: Viewer, h: c.logout},

		// Post-incident notes: exec and up.
		{method: "GET", path: "/admin/incidents/{id}/note", role: Exec, h: c.noteEditor},
		{method: "POST", path: "/admin/incidents/{id}/note", role: Exec, h: c.saveNote},
		{method: "POST", path: "/admin/incidents/{id}/note/publish", role: Exec, h: c.publishNote},

		// Incident work: responders and admins.
		{method: "GET", path: "/admin/incidents/new", role: Responder, h: c.newIncidentForm},
		{method: "POST", path: "/admin/incidents", role: Responder, h: c.createIncident},
		{method: "POST", path: "/admin/incidents/{id}/updates", role: Responder, h: c.postUpdate},
		{method: "POST", path: "/admin/incidents/{id}/reclassify", role: Responder, h: c.reclassify},
		{method: "POST", path: "/admin/maintenance", role: Responder, h: c.scheduleMaintenance},
		{method: "POST", path: "/admin/maintenance/{id}", role: Responder, h: c.updateMaintenance},
		{method: "POST", path: "/admin/components/{id}", role: Responder, h: c.setComponent},
		{method: "POST", path: "/admin/deliveries/{id}/retry", role: Responder, h: c.retryDelivery},
		{method: "POST", path: "/admin/webhooks/{id}/resume", role: Responder, h: c.resumeWebhook},

		// Operators, tokens and the audit log: admins.
		{method: "GET", path: "/admin/operators", role: Admin, h: c.operatorList},
		{method: "POST", path: "/admin/operators", role: Admin, h: c.addOperator},
		{method: "GET", path: "/admin/operators/{id}", role: Admin, h: c.operatorDevices},
		{method: "POST", path: "/admin/operators/{id}/role", role: Admin, h: c.setRole},
		{method: "POST", path: "/admin/operators/{id}/reset", role: Admin, h: c.resetOperator},
		{method: "POST", path: "/admin/operators/{id}/access", role: Admin, h: c.setAccess},
		{method: "POST", path: "/admin/operators/{id}/devices/revoke", role: Admin, h: c.revokeOperatorDevices},
		{method: "GET", path: "/admin/tokens", role: Admin, h: c.tokenList},
		{method: "POST", path: "/admin/tokens", role: Admin, h: c.addToken},
		{method: "POST", path: "/admin/tokens/{id}/revoke", role: Admin, h: c.revokeTokenHandler},
		{method: "GET", path: "/admin/audit", role: Admin, h: c.auditLog},
		{method: "POST", path: "/admin/webhooks", role: Admin, h: c.addWebhook},
		{method: "POST", path: "/admin/webhooks/{id}/delete", role: Admin, h: c.deleteWebhook},

		// The write API.
		{method: "GET", path: "/api/v1/incidents", role: Viewer, api: true, h: c.apiListIncidents},
		{method: "GET", path: "/api/v1/incidents/{id}", role: Viewer, api: true, h: c.apiGetIncident},
		{method: "POST", path: "/api/v1/incidents", role: Responder, api: true, h: c.apiCreateIncident},
		{method: "POST", path: "/api/v1/incidents/{id}/updates", role: Responder, api: true, h: c.apiPostUpdate},
		{method: "POST", path: "/api/v1/incidents/{id}/reclassify", role: Responder, api: true, h: c.apiReclassify},
		{method: "GET", path: "/api/v1/webhooks", role: Viewer, api: true, h: c.apiListWebhooks},
		{method: "POST", path: "/api/v1/webhooks", role: Admin, api: true, h: c.apiAddWebhook},
		{method: "POST", path: "/api/v1/webhooks/{id}/resume", role: Responder, api: true, h: c.apiResumeWebhook},
		{method: "DELETE", path: "/api/v1/webhooks/{id}", role: Admin, api: true, h: c.apiDeleteWebhook},

		// The same, in Statuspage's management API shapes.
		{method: "GET", path: "/api/v1/pages/{page_id}/incidents", role: Viewer, api: true, h: c.spListIncidents},
		{method: "GET", path: "/api/v1/pages/{page_id}/incidents/{id}", role: Viewer, api: true, h: c.spGetIncident},
		{method: "POST", path: "/api/v1/pages/{page_id}/incidents", role: Responder, api: true, h: c.spCreateIncident},
		{method: "PATCH", path: "/api/v1/pages/{page_id}/incidents/{id}", role: Responder, api: true, h: c.spUpdateIncident},
		{method: "GET", path: "/api/v1/pages/{page_id}/components", role: Viewer, api: true, h: c.spListComponents},
		{method: "PATCH", path: "/api/v1/pages/{page_id}/components/{id}", role: Responder, api: true, h: c.spUpdateComponent},
	}
}

// principal is who is making a request: an operator with a session, or an
// API token.
type principal struct {
	Operator  Operator
	Role      Role
	CSRF      string
	sessToken string
	token     *Token
}

// actor is how the timeline and the audit log name them.
func (p *principal) actor() string {
	if p == nil {
		return "anonymous"
	}
	if p.token != nil {
		return "token:" + p.token.Name
	}
	return "person:" + p.Operator.Email
}

const maxForm = 1 << 20 // post-incident notes are up to 256 KiB

func (c *Console) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if rt.api {
			c.serveAPI(w, r, rt)
			return
		}
		if rt.role == "" {
			if r.Method == http.MethodPost && !c.checkPublicCSRF(r) {
				c.auditReq(r, "anonymous", "csrf.refused", r.URL.Path, nil)
				c.fail(w, r, nil, &httpError{status: http.StatusForbidden, msg: "This form has expired. Go back, reload the page and try again."})
				return
			}
			if err := rt.h(w, r, nil); err != nil {
				c.fail(w, r, nil, err)
			}
			return
		}
		p, err := c.sessionPrincipal(r)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				c.fail(w, r, nil, err)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, &httpError{status: http.StatusUnauthorized, msg: "Your session has ended. Sign in again."})
			return
		}
		if !p.Role.Allows(rt.role) {
			c.auditReq(r, p.actor(), "access.denied", r.Method+" "+r.URL.Path, map[string]any{"role": p.Role, "needs": rt.role})
			c.fail(w, r, p, &httpError{status: http.StatusForbidden, msg: "Your role (" + string(p.Role) + ") may not do this; it needs " + string(rt.role) + "."})
			return
		}
		if r.Method == http.MethodPost && !sameToken(r.PostFormValue("csrf"), p.CSRF) {
			c.auditReq(r, p.actor(), "csrf.refused", r.URL.Path, nil)
			c.fail(w, r, p, &httpError{status: http.StatusForbidden, msg: "This form has expired. Go back, reload the page and try again."})
			return
		}
		if err := rt.h(w, r, p); err != nil {
			c.fail(w, r, p, err)
		}
	})
}

func sameToken(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sessionPrincipal returns the signed-in operator of the request, or
// ErrNotFound.
func (c *Console) sessionPrincipal(r *http.Request) (*principal, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, ErrNotFound
	}
	s, err := loadSession(r.Context(), c.o.Pool, ck.Value, c.now())
	if err != nil {
		return nil, err
	}
	if s.Stage != "full" {
		return nil, ErrNotFound
	}
	o, err := operatorByID(r.Context(), c.o.Pool, s.OperatorID)
	if err != nil {
		return nil, err
	}
	if o.Disabled || !o.Enrolled {
		return nil, ErrNotFound
	}
	return &principal{Operator: o, Role: o.Role, CSRF: s.CSRF, sessToken: ck.Value}, nil
}

// Cookies. The session cookie is SameSite=Lax so that a link from Slack
// opens the console signed in; everything that changes state is a POST
// checked for CSRF. The device and form cookies are only needed on
// same-site form posts, so they are Strict.
const (
	sessionCookie = "candor_session"
	deviceCookie  = "candor_device"
	csrfCookie    = "candor_csrf"
)

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: same})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	c.setCookie(w, r, name, "", -1, http.SameSiteLaxMode)
}

// publicCSRF returns the token the sign-in forms carry: a random value in a
// Strict cookie that the form must repeat (double submit), on top of the
// cross-origin check every request passes.
func (c *Console) publicCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 64 {
		return ck.Value
	}
	v := randomToken(32)
	c.setCookie(w, r, csrfCookie, v, 0, http.SameSiteStrictMode)
	return v
}

func (c *Console) checkPublicCSRF(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil {
		return false
	}
	return sameToken(r.PostFormValue("csrf"), ck.Value)
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, p *principal, err error) {
	status, msg, fields := statusOf(err)
	if status >= 500 {
		c.log.Error("console", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if status == http.StatusNotFound && len(fields) == 0 {
			msg = "not found"
		}
		writeFieldErrors(w, status, msg, fields)
		return
	}
	c.render(w, r, status, errorPage(c.page(p, "Error"), status, msg, fields))
}

package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/candorhq/candor/incidents"
)

// serveAPI authenticates a request by its API token (Authorization: Bearer
// or, as Statuspage's clients send it, OAuth), checks the route's role and
// runs it.
func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request, rt route) {
	w.Header().Set("Content-Type", "application/json")
	tok, err := c.apiToken(r)
	if err != nil {
		if !errors.Is(err, errBadToken) {
			c.fail(w, r, nil, err)
			return
		}
		c.auditReq(r, "anonymous", "api.refused", r.Method+" "+r.URL.Path, map[string]any{"why": "missing or invalid token"})
		w.Header().Set("WWW-Authenticate", `Bearer realm="candor"`)
		writeJSONError(w, http.StatusUnauthorized, "", "a valid API token is required (Authorization: Bearer <token>)")
		return
	}
	p := &principal{Role: tok.Role, token: &tok}
	if !p.Role.Allows(rt.role) {
		c.auditReq(r, p.actor(), "access.denied", r.Method+" "+r.URL.Path, map[string]any{"role": p.Role, "needs": rt.role})
		writeJSONError(w, http.StatusForbidden, "", "this token's role ("+string(p.Role)+") may not do this; it needs "+string(rt.role))
		return
	}
	if err := rt.h(w, r, p); err != nil {
		c.fail(w, r, p, err)
	}
}

func (c *Console) apiToken(r *http.Request) (Token, error) {
	h := r.Header.Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
		return Token{}, errBadToken
	}
	return tokenByValue(r.Context(), c.o.Pool, strings.TrimSpace(value), c.now())
}

type jsonError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, map[string][]jsonError{"errors": {{Field: field, Message: msg}}})
}

func writeFieldErrors(w http.ResponseWriter, status int, msg string, fields incidents.FieldErrors) {
	if len(fields) == 0 {
		writeJSONError(w, status, "", msg)
		return
	}
	out := make([]jsonError, len(fields))
	for i, f := range fields {
		out[i] = jsonError{Field: f.Field, Message: f.Msg}
	}
	writeJSON(w, status, map[string][]jsonError{"errors": out})
}

// decode reads a JSON request body into v, refusing unknown fields and
// trailing data, with errors that name the field.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		return nil
	}
	field, msg := "", "the body is not valid JSON: "+err.Error()
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		field, msg = te.Field, "expected "+te.Type.String()+", got "+te.Value
	case errors.As(err, &mbe):
		msg = "the body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"
	case errors.Is(err, io.EOF):
		msg = "a JSON body is required"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		msg = "unknown field"
	}
	return &httpError{status: http.StatusBadRequest, msg: msg, fields: incidents.FieldErrors{{Field: field, Msg: msg}}}
}

func (c *Console) apiListIncidents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	f := incidents.ListFilter{Limit: 50}
	q := r.URL.Query()
	if q.Get("open") == "true" || q.Get("open") == "1" {
		f.OpenOnly = true
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return &httpError{status: http.StatusBadRequest, msg: "limit must be 1 to 1000",
				fields: incidents.FieldErrors{{Field: "limit", Msg: "must be a number from 1 to 1000"}}}
		}
		f.Limit = n
	}
	list, err := c.o.Incidents.List(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []incidents.Incident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list})
	return nil
}

func (c *Console) apiGetIncident(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	inc, err := c.o.Incidents.Get(r.Context(), id)
	if err != nil {
		return err
	}
	ups, err := c.o.Incidents.Updates(r.Context(), id, false)
	if err != nil {
		return err
	}
	if ups == nil {
		ups = []incidents.PostedUpdate{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc, "updates": ups})
	return nil
}

type apiComponent struct {
	Component string `json:"component"`
	Status    string `json:"status"`
}

func componentUpdates(in []apiComponent) []incidents.ComponentUpdate {
	out := make([]incidents.ComponentUpdate, len(in))
	for i, cu := range in {
		out[i] = incidents.ComponentUpdate{Component: cu.Component, Status: incidents.ComponentStatus(cu.Status)}
	}
	return out
}

type apiNewIncident struct {
	Title          string         `json:"title"`
	Status         string         `json:"status"`
	Message        string         `json:"message"`
	Visibility     string         `json:"visibility"`
	Impact         string         `json:"impact"`
	Components     []apiComponent `json:"components"`
	Classification string         `json:"classification"`
}

func (c *Console) apiCreateIncident(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in apiNewIncident
	if err := decode(r, &in); err != nil {
		return err
	}
	inc, err := c.o.Incidents.CreateIncident(r.Context(), incidents.NewIncident{
		Title: in.Title, Status: incidents.Status(in.Status), Message: in.Message, Visibility: incidents.Visibility(in.Visibility),
		Impact: incidents.Impact(in.Impact), Components: componentUpdates(in.Components),
		Classification: incidents.Classification(in.Classification), Actor: p.actor(),
	})
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "incident.created", incidentTarget(inc.ID), nil)
	w.Header().Set("Location", "/api/v1/incidents/"+strconv.FormatInt(inc.ID, 10))
	writeJSON(w, http.StatusCreated, map[string]any{"incident": inc})
	return nil
}

type apiReclassify struct {
	Classification string `json:"classification"`
	Reason         string `json:"reason"`
}

type apiUpdate struct {
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Visibility string         `json:"visibility"`
	Impact     string         `json:"impact"`
	Components []apiComponent `json:"components"`
	Reclassify *apiReclassify `json:"reclassify"`
}

func (c *Console) apiPostUpdate(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in apiUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	u := incidents.Update{Status: incidents.Status(in.Status), Message: in.Message, Visibility: incidents.Visibility(in.Visibility),
		Impact: incidents.Impact(in.Impact), Components: componentUpdates(in.Components), Actor: p.actor()}
	if in.Reclassify != nil {
		u.Reclassify = &incidents.Reclassification{Classification: incidents.Classification(in.Reclassify.Classification), Reason: in.Reclassify.Reason}
	}
	inc, err := c.o.Incidents.PostUpdate(r.Context(), id, u)
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "incident.update_posted", incidentTarget(id), map[string]any{"status": inc.Status})
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc})
	return nil
}

func (c *Console) apiReclassify(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in apiReclassify
	if err := decode(r, &in); err != nil {
		return err
	}
	inc, err := c.o.Incidents.Reclassify(r.Context(), id, incidents.Classification(in.Classification), in.Reason, p.actor())
	if err != nil {
		return err
	}
	c.auditReq(r, p.actor(), "incident.reclassified", incidentTarget(id), map[string]any{"to": inc.Classification})
	writeJSON(w, http.StatusOK, map[string]any{"incident": inc})
	return nil
}

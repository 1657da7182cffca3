package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/candorhq/candor/incidents"
)

// Client calls a Candor's write API (/api/v1) with an API token, for the
// CLI and for scripts written in Go.
type Client struct {
	BaseURL string // "https://status.example.com"
	Token   string
	HTTP    *http.Client // http.DefaultClient when nil
}

// APIError is a refusal from the API, with the fields it names.
type APIError struct {
	Status int
	Errors []incidents.FieldError
}

func (e *APIError) Error() string {
	var parts []string
	for _, f := range e.Errors {
		if f.Field != "" {
			parts = append(parts, f.Field+": "+f.Msg)
		} else {
			parts = append(parts, f.Msg)
		}
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), strings.Join(parts, "; "))
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		ae := &APIError{Status: res.StatusCode}
		var je struct {
			Errors []incidents.FieldError `json:"errors"`
		}
		if json.Unmarshal(b, &je) == nil {
			ae.Errors = je.Errors
		}
		if len(ae.Errors) == 0 {
			ae.Errors = []incidents.FieldError{{Msg: "the server did not say why"}}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// ListIncidents returns incidents, open ones first.
func (c *Client) ListIncidents(ctx context.Context, openOnly bool) ([]incidents.Incident, error) {
	var out struct {
		Incidents []incidents.Incident `json:"incidents"`
	}
	path := "/api/v1/incidents"
	if openOnly {
		path += "?open=true"
	}
	err := c.do(ctx, "GET", path, nil, &out)
	return out.Incidents, err
}

// Incident returns one incident and its updates, oldest first.
func (c *Client) Incident(ctx context.Context, id int64) (incidents.Incident, []incidents.PostedUpdate, error) {
	var out struct {
		Incident incidents.Incident       `json:"incident"`
		Updates  []incidents.PostedUpdate `json:"updates"`
	}
	err := c.do(ctx, "GET", "/api/v1/incidents/"+strconv.FormatInt(id, 10), nil, &out)
	return out.Incident, out.Updates, err
}

// UpdateRequest is an update posted through the API.
type UpdateRequest struct {
	Status     string                      `json:"status,omitempty"`
	Message    string                      `json:"message"`
	Visibility string                      `json:"visibility,omitempty"`
	Impact     string                      `json:"impact,omitempty"`
	Components []incidents.ComponentUpdate `json:"components,omitempty"`
	Reclassify *ReclassifyRequest          `json:"reclassify,omitempty"`
}

// ReclassifyRequest reclassifies an incident with a reason.
type ReclassifyRequest struct {
	Classification string `json:"classification"`
	Reason         string `json:"reason"`
}

// PostUpdate posts an update on an incident.
func (c *Client) PostUpdate(ctx context.Context, id int64, u UpdateRequest) (incidents.Incident, error) {
	var out struct {
		Incident incidents.Incident `json:"incident"`
	}
	err := c.do(ctx, "POST", "/api/v1/incidents/"+strconv.FormatInt(id, 10)+"/updates", u, &out)
	return out.Incident, err
}

// UsageError is a mistake on the command line (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

const incidentUsage = `usage:
  candor incident list [--open] [--json]
  candor incident show ID [--json]
  candor incident update ID --message TEXT [--status S] [--internal] [--impact I]
                            [--component NAME=STATUS]... [--classification C --reason TEXT] [--json]
  candor incident resolve ID --message TEXT [--json]
The API is at $CANDOR_URL, with the token in $CANDOR_TOKEN (candor token create).`

// IncidentCommand runs "candor incident list|show|update|resolve" against
// the API at getenv("CANDOR_URL") with the token getenv("CANDOR_TOKEN"):
// a readable table by default, JSON with --json.
func IncidentCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &UsageError{incidentUsage}
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("candor incident "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	open := fs.Bool("open", false, "only open incidents")
	message := fs.String("message", "", "the update's text (markdown)")
	status := fs.String("status", "", "investigating, identified, monitoring or resolved")
	internal := fs.Bool("internal", false, "post the update for operators only")
	impact := fs.String("impact", "", "none, minor, major or critical")
	class := fs.String("classification", "", "security, non_security or undetermined")
	reason := fs.String("reason", "", "why the classification changes")
	var comps []incidents.ComponentUpdate
	fs.Func("component", "`NAME=STATUS`, e.g. Login=partial_outage (repeatable)", func(s string) error {
		name, st, ok := strings.Cut(s, "=")
		if !ok || name == "" || st == "" {
			return errors.New("want NAME=STATUS")
		}
		comps = append(comps, incidents.ComponentUpdate{Component: name, Status: incidents.ComponentStatus(st)})
		return nil
	})
	var id int64
	if verb == "show" || verb == "update" || verb == "resolve" {
		if len(args) == 0 {
			return &UsageError{incidentUsage}
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n <= 0 {
			return &UsageError{fmt.Sprintf("%q is not an incident id\n%s", args[0], incidentUsage)}
		}
		id, args = n, args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return &UsageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Sprintf("unexpected %q\n%s", fs.Arg(0), incidentUsage)}
	}
	cl := &Client{BaseURL: getenv("CANDOR_URL"), Token: getenv("CANDOR_TOKEN")}
	if cl.BaseURL == "" || cl.Token == "" {
		return &UsageError{"set CANDOR_URL (e.g. https://status.example.com) and CANDOR_TOKEN (from candor token create)"}
	}
	switch verb {
	case "list":
		list, err := cl.ListIncidents(ctx, *open)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		return WriteIncidentTable(stdout, list, time.Now())
	case "show":
		inc, ups, err := cl.Incident(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"incident": inc, "updates": ups})
		}
		return WriteIncident(stdout, inc, ups)
	case "update", "resolve":
		if *message == "" {
			return &UsageError{"--message is required: every change is posted as an update with words\n" + incidentUsage}
		}
		u := UpdateRequest{Status: *status, Message: *message, Impact: *impact, Components: comps}
		if verb == "resolve" {
			u.Status = string(incidents.StatusResolved)
		}
		if *internal {
			u.Visibility = string(incidents.Internal)
		}
		if *class != "" {
			u.Reclassify = &ReclassifyRequest{Classification: *class, Reason: *reason}
		}
		inc, err := cl.PostUpdate(ctx, id, u)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"incident": inc})
		}
		_, err = fmt.Fprintf(stdout, "posted on incident %d: now %s, %s\n", inc.ID, inc.Status, inc.Classification)
		return err
	}
	return &UsageError{fmt.Sprintf("unknown command %q\n%s", verb, incidentUsage)}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteIncidentTable writes incidents as an aligned table.
func WriteIncidentTable(w io.Writer, list []incidents.Incident, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCLASSIFICATION\tIMPACT\tSTARTED (UTC)\tLAST PUBLIC UPDATE\tTITLE")
	for _, inc := range list {
		cls := string(inc.Classification)
		if inc.Confirmed {
			cls += " (confirmed)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Status, cls, inc.Impact,
			inc.StartedAt.UTC().Format("2006-01-02 15:04"), ago(now, inc.LastPublicAt), oneLine(inc.Title, 80))
	}
	return tw.Flush()
}

// WriteIncident writes one incident and its updates, newest first.
func WriteIncident(w io.Writer, inc incidents.Incident, ups []incidents.PostedUpdate) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Incident\t%d: %s\n", inc.ID, oneLine(inc.Title, 200))
	fmt.Fprintf(tw, "Status\t%s\n", inc.Status)
	fmt.Fprintf(tw, "Classification\t%s (confirmed: %v)\n", inc.Classification, inc.Confirmed)
	fmt.Fprintf(tw, "Impact\t%s\n", inc.Impact)
	fmt.Fprintf(tw, "Started\t%s\n", utc(inc.StartedAt))
	if !inc.ResolvedAt.IsZero() {
		fmt.Fprintf(tw, "Resolved\t%s\n", utc(inc.ResolvedAt))
	}
	for _, name := range inc.Components {
		fmt.Fprintf(tw, "Component\t%s: %s\n", name, inc.ComponentState[name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := len(ups) - 1; i >= 0; i-- {
		u := ups[i]
		fmt.Fprintf(w, "\n%s  %s  %s  %s\n%s\n", utc(u.CreatedAt), u.Status, u.Visibility, u.Author, strings.TrimSpace(u.Body))
	}
	return nil
}

// oneLine keeps text from breaking a table: control characters become
// spaces and long text is cut.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len([]rune(s)) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/candorhq/candor/incidents"
)

func TestIncidentCommand(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := CreateToken(ctx, e.pool, "responder", "cli")
	if err != nil {
		t.Fatal(err)
	}
	inc, err := e.store.CreateIncident(ctx, incidents.NewIncident{Title: "Login failures", Message: "Investigating.", Actor: "person:test"})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CANDOR_URL": e.srv.URL, "CANDOR_TOKEN": tok}
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := IncidentCommand(ctx, args, func(k string) string { return env[k] }, &out, &errb)
		return out.String(), err
	}
	out, err := run("list")
	if err != nil || !strings.Contains(out, "ID  STATUS") || !strings.Contains(out, "investigating") {
		t.Fatalf("list: %v\n%q", err, out)
	}
	out, err = run("update", itoa(inc.ID), "--status", "identified", "--message", "Found it.", "--component", "Login=partial_outage")
	if err != nil || !strings.Contains(out, "now identified") {
		t.Fatalf("update: %v\n%s", err, out)
	}
	_, err = run("update", itoa(inc.ID), "--status", "bogus", "--message", "x")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 422 || !strings.Contains(err.Error(), "status: ") {
		t.Fatalf("bad status: %v", err)
	}
	out, err = run("resolve", itoa(inc.ID), "--message", "Fixed.", "--json")
	var got struct{ Incident incidents.Incident }
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Incident.Status != incidents.StatusResolved {
		t.Fatalf("resolve: %v\n%s", err, out)
	}
	out, err = run("show", itoa(inc.ID))
	if err != nil || !strings.Contains(out, "Fixed.") || !strings.Contains(out, "Login: operational") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	var ue *UsageError
	for _, args := range [][]string{{}, {"show"}, {"show", "x"}, {"update", "1"}, {"frobnicate"}} {
		if _, err := run(args...); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	env["CANDOR_TOKEN"] = "candor_wrong"
	if _, err := run("list"); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("wrong token: %v", err)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\x1b[31mb\nc", 80); got != "a [31mb c" {
		t.Errorf("got %q", got)
	}
	if got := oneLine("abcdef", 4); got != "abc…" {
		t.Errorf("got %q", got)
	}
}

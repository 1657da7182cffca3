package incidents

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/candorhq/candor/probes"
)

// TestOnlyUTCUnderAuckland runs TestAucklandScenario in a child process with
// TZ=Pacific/Auckland (UTC+13 in March), so that any local time leaking into
// what is stored or serialised shows.
func TestOnlyUTCUnderAuckland(t *testing.T) {
	t.Parallel()
	if os.Getenv("CANDOR_TZ_CHILD") != "" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAucklandScenario$", "-test.v")
	cmd.Env = append(os.Environ(), "TZ=Pacific/Auckland", "CANDOR_TZ_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAucklandScenario") {
		t.Fatalf("child with TZ=Pacific/Auckland: %v\n%s", err, out)
	}
}

// offsetRE finds a serialised time with a zone offset instead of Z.
var offsetRE = regexp.MustCompile(`\d\d:\d\d(:\d\d(\.\d+)?)?[+-]\d\d:\d\d`)

func TestAucklandScenario(t *testing.T) {
	if os.Getenv("CANDOR_TZ_CHILD") == "" {
		t.Log("runs only as the child of TestOnlyUTCUnderAuckland")
		return
	}
	if _, off := time.Now().Zone(); off == 0 {
		t.Fatalf("TZ=%s did not take effect", os.Getenv("TZ"))
	}
	ctx := context.Background()
	s, pool, clk := newStore(t, Policy{}, Options{})
	local := t0.In(time.Local) // the same instant, written in Auckland time
	for n := range 5 {
		for _, l := range twoLocs {
			at := local.Add(time.Duration(n) * interval)
			clk.Set(at.Add(time.Second))
			r := fail("login", l, at, "password", probes.ClassHTTPStatus)
			if n >= 2 {
				r = ok("login", l, at)
			}
			if _, err := s.Observe(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	incs, err := s.List(ctx, ListFilter{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("%v %v", incs, err)
	}
	inc := incs[0]
	for name, tm := range map[string]time.Time{"started": inc.StartedAt, "detected": inc.DetectedAt, "monitoring": inc.MonitoringAt, "updated": inc.UpdatedAt} {
		if tm.Location() != time.UTC {
			t.Errorf("%s_at %v is not in UTC", name, tm)
		}
	}
	if !inc.StartedAt.Equal(t0) {
		t.Errorf("started %v, want %v", inc.StartedAt, t0)
	}
	b, _ := json.Marshal(inc)
	if offsetRE.Match(b) || !strings.Contains(string(b), `"started_at":"2025-03-04T08:00:00Z"`) {
		t.Errorf("incident JSON: %s", b)
	}
	// Everything the timeline and the outbox hold.
	rows, err := pool.Query(ctx, `select payload::text from incident_events union all select payload::text from outbox`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		n++
		if offsetRE.MatchString(p) || strings.Contains(p, "NZDT") || strings.Contains(p, "+13") {
			t.Errorf("payload with a local time: %s", p)
		}
	}
	if n == 0 {
		t.Fatal("no payloads")
	}
	tl, _ := s.Timeline(ctx, inc.ID)
	for _, e := range tl {
		if e.At.Location() != time.UTC {
			t.Errorf("event %s at %v", e.Kind, e.At)
		}
	}
	ups, _ := s.Updates(ctx, inc.ID, true)
	// The first update, then the automatic one when the probes pass again.
	if len(ups) != 2 || !strings.Contains(ups[0].Body+ups[1].Body, "2025-03-04 08:00 UTC") {
		t.Errorf("updates %+v", ups)
	}
	for _, u := range ups {
		if u.CreatedAt.Location() != time.UTC || strings.Contains(u.Body, "NZDT") || strings.Contains(u.Body, "+13") {
			t.Errorf("update %+v is not in UTC", u)
		}
	}
	draft, err := s.DraftNote(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(draft, "| Started (first failed run) | 2025-03-04 08:00:00 UTC |") || strings.Contains(draft, "21:00") {
		t.Errorf("draft times are not UTC:\n%s", draft)
	}
	// What is stored is the instant itself: the same in UTC whatever the
	// session's time zone (which follows the server's TZ here, +13).
	var text string
	var epoch float64
	if err := pool.QueryRow(ctx, `select (started_at at time zone 'UTC')::text, extract(epoch from started_at)::float8 from incidents`).Scan(&text, &epoch); err != nil {
		t.Fatal(err)
	}
	if text != "2025-03-04 08:00:00" || int64(epoch) != t0.Unix() {
		t.Errorf("started_at stored as %q (epoch %v), want 2025-03-04 08:00:00 UTC", text, epoch)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/probes"
)

// cmdProbeRun runs the probe called name once and prints each step with its
// status, latency and outcome, then the run's outcome, error class and
// security signals. It returns 0 when the run succeeded (ok or degraded)
// and 1 when it failed or name is unknown: it is what on-call runs first.
// It runs as location, with that location's own account where the probe
// gives it one.
//
// With claims, the run claims its one-time-code window like every replica
// does, so that it neither spoils nor is spoiled by a run of `candor serve`
// on the same account. Since a window it finds taken means waiting for the
// next, a run by hand may take up to one code period longer than the
// probe's timeout: on-call asked about the target, and "another run had
// the code" would not answer that.
func cmdProbeRun(ctx context.Context, ps []probes.Probe, name, location string, claims *probes.Claims, stdout io.Writer) int {
	var p *probes.Probe
	names := make([]string, 0, len(ps))
	for i := range ps {
		names = append(names, ps[i].Name)
		if ps[i].Name == name {
			p = &ps[i]
		}
	}
	if p == nil {
		sort.Strings(names)
		fmt.Fprintf(stdout, "no probe named %q; the configuration has: %s\n", name, strings.Join(names, ", "))
		return 1
	}
	plan, err := probes.Compile(*p)
	if err != nil {
		fmt.Fprintf(stdout, "probe %s cannot run: %v\n", name, err)
		return 1
	}
	if period := plan.CodePeriod(); claims != nil && period > 0 {
		patient := *p
		patient.Timeout = config.Dur(plan.Timeout() + period)
		patient.Interval = config.Dur(max(plan.Interval(), plan.Timeout()+period))
		if longer, err := probes.Compile(patient); err == nil {
			plan = longer
		}
	}
	r := probes.NewRunner(probes.RunnerOptions{Location: location, Claims: claims})
	defer r.Close()
	target := p.Target
	if target == "" {
		target = "(absolute step URLs)"
	}
	fmt.Fprintf(stdout, "probe %s against %s, %d steps\n\n", name, target, len(p.Steps))
	res := r.Run(ctx, plan)
	printResult(stdout, p, res)
	if res.Failed() {
		return 1
	}
	return 0
}

// printResult writes a run as a table of steps and a verdict.
func printResult(w io.Writer, p *probes.Probe, res probes.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tREQUEST\tSTATUS\tLATENCY\tBYTES\tOUTCOME")
	if res.FailedStep == "tls" {
		fmt.Fprintf(tw, "-\ttls\t%s\t-\t-\t-\tFAILED\n", p.Target)
	} else if res.CertNotAfter != nil {
		days := int(time.Until(*res.CertNotAfter).Hours() / 24)
		fmt.Fprintf(tw, "-\ttls\t%s\t-\t-\t-\tok (certificate valid for %d more days)\n", p.Target, days)
	}
	for i := range p.Steps {
		name := p.Steps[i].Name
		if name == "" {
			name = fmt.Sprintf("step %d", i+1)
		}
		if i >= len(res.Steps) {
			fmt.Fprintf(tw, "%d\t%s\t\t\t\t\tnot run\n", i+1, name)
			continue
		}
		s := res.Steps[i]
		status := "-"
		if s.Status != 0 {
			status = fmt.Sprint(s.Status)
		}
		outcome := "ok"
		if !s.OK {
			outcome = "FAILED"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s %s\t%s\t%s\t%d\t%s\n", i+1, s.Name, s.Method, s.Path, status, fmtLatency(s.Latency), s.Bytes, outcome)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	switch res.Outcome {
	case probes.OutcomeFailed:
		fmt.Fprintf(w, "FAILED at step %q after %s: %s\n", res.FailedStep, res.Duration.Round(time.Millisecond), res.Class)
	default:
		fmt.Fprintf(w, "%s in %s\n", strings.ToUpper(string(res.Outcome)), res.Duration.Round(time.Millisecond))
	}
	if res.Message != "" {
		fmt.Fprintf(w, "  %s\n", res.Message)
	}
	for _, s := range res.Signals {
		fmt.Fprintf(w, "  SECURITY SIGNAL: %s\n", s)
	}
}

// fmtLatency rounds to what a person reads: 0.4ms, 12ms, 1.25s.
func fmtLatency(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

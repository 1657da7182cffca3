package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/runbooks"
)

// cmdRunbooksLint checks the built-in runbooks and those in dir ("" for the
// built-ins only) against known (the configuration's probes, steps,
// components and flows), prints every problem as file:line: message and a
// summary line to stdout, and returns the exit status: 1 when a runbook has a
// problem, 0 otherwise.
//
// It then prints, as warnings that do not change the exit status, each role
// × error class failure of the configured probes that no runbook covers
// (runbooks.Uncovered): such a failure still opens an incident and the
// publication policy still speaks for it, but on-call gets no checklist, so
// it is something to write, not something broken.
func cmdRunbooksLint(dir string, known runbooks.Known, stdout io.Writer) int {
	ps := runbooks.Lint(dir, known)
	for _, p := range ps {
		fmt.Fprintln(stdout, p.String())
	}
	where := "the built-in runbooks"
	if dir != "" {
		where = "the built-in runbooks and " + dir
	}
	if len(ps) > 0 {
		fmt.Fprintf(stdout, "candor: %d problem(s) in %s\n", len(ps), where)
		return 1
	}
	set, err := runbooks.Load(dir)
	if err != nil { // Lint found nothing, so this is unexpected; report it all the same
		fmt.Fprintf(stdout, "candor: %v\n", err)
		return 1
	}
	uncovered := runbooks.Uncovered(set, known)
	for _, p := range uncovered {
		fmt.Fprintln(stdout, p.String())
	}
	if len(uncovered) > 0 {
		fmt.Fprintf(stdout, "%s: %d runbooks, no problems; %d failure(s) of the configured probes that no runbook covers (warnings)\n", where, len(set), len(uncovered))
		return 0
	}
	fmt.Fprintf(stdout, "%s: %d runbooks, no problems\n", where, len(set))
	return 0
}

// runbookKnown is what runbooks are checked against: the configuration's
// names, and every step of every probe with its role, whether it checks a
// security signal, and the components its failure affects, for the coverage
// report. An https target adds its TLS check, which fails as login_page.
func runbookKnown(cfg *appConfig) runbooks.Known {
	k := cfg.known()
	comps := cfg.Incidents.Components
	for _, p := range cfg.Probes {
		if !p.TLS.Skip && strings.HasPrefix(strings.ToLower(strings.TrimSpace(string(p.Target))), "https://") {
			k.Flows = append(k.Flows, runbooks.FlowStep{Probe: p.Name, Role: string(probes.RoleLoginPage),
				Components: stepComponents(comps, p.Name, "", probes.RoleLoginPage)})
		}
		for _, s := range p.Steps {
			fs := runbooks.FlowStep{Probe: p.Name, Step: s.Name, Role: string(s.Role.Or()),
				Components: stepComponents(comps, p.Name, s.Name, s.Role.Or())}
			for _, e := range s.Expect {
				if e.Signal != "" {
					fs.Signals = true
				}
			}
			k.Flows = append(k.Flows, fs)
		}
	}
	return k
}

// stepComponents returns the components a failure of probe at step (of the
// given role) affects, as the incidents package maps them: those that name
// the step ("probe/step" or "step") or its role, or else those that name the
// probe. step "" is the TLS check, which only roles and the probe name.
func stepComponents(comps []incidents.Component, probe, step string, role probes.Role) []string {
	var names []string
	for _, c := range comps {
		if (step != "" && (slices.Contains(c.Steps, probe+"/"+step) || slices.Contains(c.Steps, step))) ||
			slices.Contains(c.Roles, string(role)) {
			names = append(names, c.Name)
		}
	}
	if len(names) > 0 {
		return names
	}
	for _, c := range comps {
		if slices.Contains(c.Probes, probe) {
			names = append(names, c.Name)
		}
	}
	return names
}

package main

import (
	"fmt"
	"io"

	"github.com/candorhq/candor/runbooks"
)

// cmdRunbooksLint checks the built-in runbooks and those in dir ("" for the
// built-ins only) against known (the configuration's probes, steps and
// components), prints every problem as file:line: message and a summary line
// to stdout, and returns the exit status: 0 when there is no problem, 1 otherwise.
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
	fmt.Fprintf(stdout, "%s: %d runbooks, no problems\n", where, len(set))
	return 0
}

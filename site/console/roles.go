package console

import "fmt"

// Role is what an operator or API token may do. Each role may do everything
// the roles before it may.
type Role string

// Roles, from least to most trusted.
const (
	Viewer    Role = "viewer"    // read the console
	Exec      Role = "exec"      // plus draft and publish post-incident notes
	Responder Role = "responder" // plus create and update incidents, reclassify, maintenance
	Admin     Role = "admin"     // plus operators, roles, tokens and the audit log
)

// Roles is every role, least trusted first.
var Roles = []Role{Viewer, Exec, Responder, Admin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether r may do what need requires.
func (r Role) Allows(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("unknown role %q: use viewer, exec, responder or admin", s)
	}
	return r, nil
}

package incidents

import (
	"errors"
	"strings"
)

// ErrNotFound is returned when an incident, maintenance or note does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a change lost a race with another one (for
// example a second open incident for one signature); retrying may succeed.
var ErrConflict = errors.New("conflicting change")

// FieldError is a validation error on one input field, named as the API and
// forms name it ("status", "message", "components[1].status", "reason").
type FieldError struct {
	Field string `json:"field"`
	Msg   string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrors is every validation error of one request. Nothing was written
// when a Store method returns it. errors.As finds it, and each FieldError
// within it.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each FieldError.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Field returns the error on field, if any.
func (es FieldErrors) Field(field string) (FieldError, bool) {
	for _, e := range es {
		if e.Field == field {
			return e, true
		}
	}
	return FieldError{}, false
}

func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

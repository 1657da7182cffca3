package site

import (
	"bytes"
	"context"
	"net/http"
)

// Component is a component as the public page shows it.
type Component struct {
	Name  string
	Group string
}

// Placeholder returns a handler for "/" that lists the components, rendered
// once up front so a request never does work.
func Placeholder(name string, comps []Component) (http.Handler, error) {
	var b bytes.Buffer
	if err := placeholderPage(name, comps).Render(context.Background(), &b); err != nil {
		return nil, err
	}
	page := b.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(page)
	}), nil
}

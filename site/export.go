package site

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Export writes the snapshot as static files under dir, for hosting the
// status page on independent infrastructure (object storage behind a CDN,
// nginx). A path without an extension becomes a directory with an
// index.html ("/" → index.html, "/incidents/42" → incidents/42/index.html);
// every file gets a gzip twin (name.gz) for servers that serve precompressed
// files (nginx gzip_static); the not-found page is 404.html.
func Export(snap *Snapshot, dir string) error {
	if snap == nil {
		return errors.New("site: export: no snapshot")
	}
	write := func(name string, f *file) error {
		full := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.body, 0o644); err != nil {
			return err
		}
		return os.WriteFile(full+".gz", f.gz, 0o644)
	}
	for _, p := range snap.Paths() {
		if err := write(exportName(p), snap.files[p]); err != nil {
			return fmt.Errorf("site: export %s: %w", p, err)
		}
	}
	if err := write("404.html", snap.notFound); err != nil {
		return fmt.Errorf("site: export 404.html: %w", err)
	}
	return nil
}

// exportName is the file a URL path is exported to.
func exportName(p string) string {
	p = strings.TrimPrefix(path.Clean(p), "/")
	if p == "" {
		return "index.html"
	}
	if path.Ext(p) == "" {
		return p + "/index.html"
	}
	return p
}

// Export builds a fresh snapshot from the Store and writes it under dir
// (see the package-level Export).
func (s *Site) Export(ctx context.Context, dir string) error {
	if err := s.Rebuild(ctx); err != nil {
		return err
	}
	return Export(s.Snapshot(), dir)
}

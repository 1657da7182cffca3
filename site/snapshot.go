package site

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Snapshot is every public response of the site, rendered once: a request
// is a map look-up. It is immutable once built and shared by all requests.
type Snapshot struct {
	// Built is when the snapshot was rendered; UpdatedAt is the latest change
	// in the data it shows. Both UTC.
	Built     time.Time
	UpdatedAt time.Time
	files     map[string]*file
	notFound  *file
	key       string // modelKey of what it was rendered from
}

// file is one response in both encodings, with its headers prepared so that
// serving it allocates nothing.
type file struct {
	sum    [sha256.Size]byte // of body, ctype and cache: equal sums, equal files
	key    string            // of what it was rendered from, for builder.memo
	path   string
	status int
	body   []byte
	gz     []byte
	hdr    headerList // identity
	hdrGz  headerList // gzip
	etag   string
	etagGz string
	lenGz  []string // Content-Length of gz, for HEAD
}

// Content types of what a snapshot holds.
const (
	typeHTML = "text/html; charset=utf-8"
	typeJSON = "application/json; charset=utf-8"
	typeRSS  = "application/rss+xml; charset=utf-8"
	typeAtom = "application/atom+xml; charset=utf-8"
	typeSVG  = "image/svg+xml"
	typeCSS  = "text/css; charset=utf-8"
	typeJS   = "text/javascript; charset=utf-8"
)

// csp allows the page's own stylesheet, script and nothing else: no inline
// script or style, no frames, no forms, no plugins.
const csp = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Cache-Control of a snapshot's responses: a CDN or browser may reuse them
// for a few seconds, serve them while it revalidates, and keep serving them
// for a day if Candor cannot answer.
const (
	cacheShort     = "public, max-age=10, stale-while-revalidate=30, stale-if-error=86400"
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNotFound  = "public, max-age=60"
)

// builder collects the files of a snapshot.
type builder struct {
	prev     *Snapshot // files whose bytes did not change are taken from it
	files    map[string]*file
	notFound *file
	gz       *gzip.Writer
	buf      bytes.Buffer
}

func newBuilder(prev *Snapshot) *builder {
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestCompression)
	return &builder{prev: prev, files: map[string]*file{}, gz: gz}
}

// add puts a response at path, compressing it and preparing its headers.
func (b *builder) add(path, ctype string, body []byte) *file {
	f := b.make(path, http.StatusOK, ctype, cacheShort, body)
	b.files[path] = f
	return f
}

func (b *builder) make(path string, status int, ctype, cache string, body []byte) *file {
	h := sha256.New()
	h.Write(body)
	h.Write([]byte{0})
	h.Write([]byte(ctype))
	h.Write([]byte{0})
	h.Write([]byte(cache))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	// Most of a snapshot is the same as the last one: reusing those files
	// saves compressing them again, and keeps their ETags.
	if b.prev != nil {
		old := b.prev.files[path]
		if path == "/404.html" {
			old = b.prev.notFound
		}
		if old != nil && old.sum == sum && old.status == status {
			return old
		}
	}
	b.buf.Reset()
	b.gz.Reset(&b.buf)
	_, _ = b.gz.Write(body)
	_ = b.gz.Close()
	gz := bytes.Clone(b.buf.Bytes())
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	f := &file{sum: sum, path: path, status: status, body: body, gz: gz}
	f.etag, f.etagGz = `"`+tag+`"`, `"`+tag+`-gz"`
	f.hdr = listHeaders(headers(path, ctype, cache, f.etag, len(body), ""))
	// The gzip form goes without Content-Length: that keeps a gzip HTML
	// response at eight headers (measured: the ninth makes net/http's
	// response header map grow, about 15% more CPU per request), and
	// net/http still sends the length of a body up to 2 KB and chunks
	// larger ones. HEAD gets the length (serve).
	f.hdrGz = listHeaders(headers(path, ctype, cache, f.etagGz, -1, "gzip"))
	f.lenGz = []string{strconv.Itoa(len(gz))}
	return f
}

func headers(path, ctype, cache, etag string, n int, enc string) http.Header {
	// Few headers on purpose: each costs net/http time on every response,
	// and past eight the response's header map has to grow. CSP's
	// frame-ancestors does what X-Frame-Options did.
	h := http.Header{
		"Content-Type":            {ctype},
		"Cache-Control":           {cache},
		"Etag":                    {etag},
		"Vary":                    {"Accept-Encoding"},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"strict-origin-when-cross-origin"},
		"Content-Security-Policy": {csp},
	}
	if n >= 0 {
		h["Content-Length"] = []string{strconv.Itoa(n)}
	}
	if enc != "" {
		h["Content-Encoding"] = []string{enc}
	}
	// The API, the feeds and the badges are read by other sites' widgets.
	if strings.HasPrefix(path, "/api/") || ctype == typeSVG || ctype == typeRSS || ctype == typeAtom || path == "/badge.json" {
		h["Access-Control-Allow-Origin"] = []string{"*"}
	}
	return h
}

func (b *builder) snapshot(built, updated time.Time) *Snapshot {
	return &Snapshot{Built: built, UpdatedAt: updated, files: b.files, notFound: b.notFound}
}

// Paths returns the paths the snapshot serves, sorted.
func (s *Snapshot) Paths() []string {
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Body returns the identity body served at path, and whether there is one.
func (s *Snapshot) Body(path string) ([]byte, bool) {
	f, ok := s.files[path]
	if !ok {
		return nil, false
	}
	return f.body, true
}

// headerList is a response's headers in a fixed order, with canonical
// keys: copying it into the response costs no map iteration.
type headerList []struct {
	key    string
	values []string
}

func listHeaders(h http.Header) headerList {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(headerList, len(keys))
	for i, k := range keys {
		out[i].key, out[i].values = k, h[k]
	}
	return out
}

// serve answers one request from the snapshot.
func (s *Snapshot) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h := w.Header()
		h["Allow"] = []string{"GET, HEAD"}
		h["Cache-Control"] = []string{"no-store"}
		h["X-Content-Type-Options"] = []string{"nosniff"}
		h["Content-Security-Policy"] = []string{csp}
		h["Referrer-Policy"] = []string{"strict-origin-when-cross-origin"}
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	f := s.files[r.URL.Path]
	if f == nil {
		f = s.notFound
	}
	hdr, body, etag, gz := f.hdr, f.body, f.etag, false
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		hdr, body, etag, gz = f.hdrGz, f.gz, f.etagGz, true
	}
	h := w.Header()
	for _, kv := range hdr {
		h[kv.key] = kv.values
	}
	if gz && r.Method == http.MethodHead {
		h["Content-Length"] = f.lenGz
	}
	if f.status == http.StatusOK && etagMatch(r.Header["If-None-Match"], etag) {
		delete(h, "Content-Length")
		delete(h, "Content-Type")
		delete(h, "Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(f.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether Accept-Encoding allows gzip (or *) with a
// non-zero quality.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var part string
			part, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") && name != "*" {
				continue
			}
			q := strings.TrimSpace(params)
			if rest, ok := strings.CutPrefix(strings.ToLower(q), "q="); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// etagMatch is If-None-Match's weak comparison against our strong tag.
func etagMatch(values []string, etag string) bool {
	for _, v := range values {
		for len(v) > 0 {
			var part string
			part, v, _ = strings.Cut(v, ",")
			part = strings.TrimSpace(part)
			if part == "*" || strings.TrimPrefix(part, "W/") == etag {
				return true
			}
		}
	}
	return false
}

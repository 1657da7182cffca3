package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/candorhq/candor/incidents"
	"github.com/candorhq/candor/internal/config"
	"github.com/candorhq/candor/notify"
	"github.com/candorhq/candor/probes"
	"github.com/candorhq/candor/probes/demo"
	"github.com/candorhq/candor/runbooks"
	"github.com/candorhq/candor/site/console"
)

// appConfig is the whole configuration file. Each part owns the type of its
// section and checks it; this file only knows which keys exist and which
// sections refer to each other.
type appConfig struct {
	Page      pageConfig
	Location  string
	Incidents incidents.Config // the components: and incidents: sections
	Probes    []probes.Probe
	Runbooks  runbooksConfig
	Console   consoleConfig
	Notify    notify.Config

	warnings config.Problems // advice from the check, which does not stop Candor
}

// consoleConfig is how the operator console meets the network in front of it.
type consoleConfig struct {
	// TrustForwardedFor takes the client's address from X-Forwarded-For
	// (for sign-in rate limits and the audit log) behind a reverse proxy.
	TrustForwardedFor bool `yaml:"trust_forwarded_for"`
	// SecureCookies marks cookies Secure even when page.url is plain http
	// (TLS ends at a proxy in front).
	SecureCookies bool `yaml:"secure_cookies"`
	// SecretKey encrypts operators' TOTP secrets at rest: 32 random bytes,
	// base64 or hex (openssl rand -base64 32), as ${ENV} or file:/path.
	SecretKey config.Secret `yaml:"secret_key"`
}

// Components is the configured components, in order.
func (cfg *appConfig) Components() []incidents.Component { return cfg.Incidents.Components }

// runbooksConfig says where your own runbooks live; they add to or replace
// the built-in ones by id.
type runbooksConfig struct {
	Dir string `yaml:"dir"`
}

// pageConfig identifies the public status page.
type pageConfig struct {
	ID   string `yaml:"id"`   // stable page id reported by /api/v2/summary.json
	Name string `yaml:"name"` // shown as the page title
	URL  string `yaml:"url"`  // public base URL, used in feeds, Slack and emails
}

// section decodes one top-level key and checks what it can alone.
type section func(c *config.Checker, path string) bool

// sections lists the top-level keys and how each is decoded and checked.
func (cfg *appConfig) sections() map[string]section {
	return map[string]section{
		"page": func(c *config.Checker, path string) bool {
			if !c.Decode(path, &cfg.Page) {
				return false
			}
			checkPage(c, path, cfg.Page)
			return true
		},
		"location": func(c *config.Checker, path string) bool {
			if !c.Decode(path, &cfg.Location) {
				return false
			}
			if !nameRE.MatchString(cfg.Location) {
				c.Errorf(path, "location %q must be letters, digits, '-' or '_' (up to 64)", cfg.Location)
			}
			return true
		},
		"probes": func(c *config.Checker, path string) bool {
			// A list: its good items are checked even when one is unreadable.
			ok := c.Decode(path, &cfg.Probes)
			probes.Check(c, path, cfg.Probes)
			return ok
		},
		"runbooks": func(c *config.Checker, path string) bool {
			if !c.Decode(path, &cfg.Runbooks) {
				return false
			}
			if cfg.Runbooks.Dir != "" {
				if fi, err := os.Stat(cfg.Runbooks.Dir); err != nil || !fi.IsDir() {
					c.Errorf(path+".dir", "runbooks directory %q does not exist", cfg.Runbooks.Dir)
				}
			}
			return true
		},
		"console": func(c *config.Checker, path string) bool {
			if !c.Decode(path, &cfg.Console) {
				return false
			}
			if cfg.Console.SecretKey.IsSet() {
				if _, err := console.ParseSecretKey(cfg.Console.SecretKey.Reveal()); err != nil {
					c.Errorf(path+".secret_key", "%v", err)
				}
			}
			return true
		},
		"components": func(c *config.Checker, path string) bool {
			return c.Decode(path, &cfg.Incidents.Components)
		},
		"notify": func(c *config.Checker, path string) bool {
			if !c.Decode(path, &cfg.Notify) {
				return false
			}
			notify.Check(c, path, &cfg.Notify)
			return true
		},
		"incidents": func(c *config.Checker, path string) bool {
			return c.Decode(path, &cfg.Incidents.Policy)
		},
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func checkPage(c *config.Checker, path string, p pageConfig) {
	if p.ID != "" && !nameRE.MatchString(p.ID) {
		c.Errorf(path+".id", "page id %q must be letters, digits, '-' or '_' (up to 64)", p.ID)
	}
	if p.URL != "" {
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.Errorf(path+".url", "page url %q must be an absolute http or https URL", p.URL)
		}
	}
}

// probeSteps maps each configured probe to its step names.
func (cfg *appConfig) probeSteps() map[string][]string {
	m := make(map[string][]string, len(cfg.Probes))
	for _, p := range cfg.Probes {
		steps := make([]string, 0, len(p.Steps))
		for _, s := range p.Steps {
			steps = append(steps, s.Name)
		}
		m[p.Name] = steps
	}
	return m
}

// known is what runbooks may match against.
func (cfg *appConfig) known() runbooks.Known {
	var k runbooks.Known
	for _, p := range cfg.Probes {
		k.Probes = append(k.Probes, p.Name)
		for _, s := range p.Steps {
			k.Steps = append(k.Steps, s.Name)
		}
	}
	for _, c := range cfg.Incidents.Components {
		k.Components = append(k.Components, c.Name)
	}
	return k
}

// applyDefaults fills what the file left out.
func (cfg *appConfig) applyDefaults() {
	if cfg.Page.ID == "" {
		cfg.Page.ID = "candor"
	}
	if cfg.Page.Name == "" {
		cfg.Page.Name = "Status"
	}
	if cfg.Location == "" {
		cfg.Location = "local"
	}
}

// parseConfig decodes and checks a whole configuration file. It returns
// config.Problems listing every problem, or nil.
func parseConfig(name string, data []byte, lookup func(string) (string, bool)) (*appConfig, error) {
	src, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	c := config.NewChecker(src, lookup)
	cfg := &appConfig{}
	sections := cfg.sections()
	root := src.Node("$")
	switch m := root.(type) {
	case nil:
		c.Errorf("$", "the configuration is empty")
	case *ast.MappingNode:
		seen := map[string]bool{}
		for _, kv := range m.Values {
			key := kv.Key.String()
			if seen[key] {
				c.KeyErrorf("$."+key, "key %q appears twice", key)
				continue
			}
			seen[key] = true
			if _, ok := sections[key]; !ok {
				c.KeyErrorf("$."+key, "unknown key %q (known: %s)", key, strings.Join(sortedKeys(sections), ", "))
			}
		}
	case *ast.MappingValueNode:
		key := m.Key.String()
		if _, ok := sections[key]; !ok {
			c.KeyErrorf("$."+key, "unknown key %q (known: %s)", key, strings.Join(sortedKeys(sections), ", "))
		}
	default:
		c.Errorf("$", "the configuration must be a mapping of sections (page, components, probes, …)")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	decoded := map[string]bool{}
	for _, key := range sortedKeys(sections) {
		if src.Node("$."+key) != nil {
			decoded[key] = sections[key](c, "$."+key)
		} else {
			decoded[key] = true // absent: defaults
		}
	}
	// Cross-section checks, once the sections they read decoded.
	if decoded["components"] && decoded["incidents"] {
		var steps map[string][]string
		if decoded["probes"] {
			steps = cfg.probeSteps()
		}
		incidents.Check(c, "$", &cfg.Incidents, steps)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	cfg.warnings = c.Warnings()
	return cfg, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

//go:embed demo.yaml
var demoTemplate string

// demoConfig returns the built-in demo configuration, with the demo login
// target at demoListen, as commented YAML.
func demoConfig(demoListen string) string {
	var b bytes.Buffer
	t := template.Must(template.New("demo").Parse(demoTemplate))
	base := "http://" + demoListen
	data := map[string]string{"DemoURL": base, "Probes": strings.TrimSpace(demo.ProbesYAML(base))}
	if err := t.Execute(&b, data); err != nil {
		panic(err) // the template is ours and fixed
	}
	return b.String()
}

// loadConfig reads the configuration named by o, or the demo configuration.
func loadConfig(o *options) (*appConfig, error) {
	if o.demo() {
		if min := demo.TOTPPeriod * time.Second; o.demoInterval < min {
			return nil, exitError{2, fmt.Errorf("--demo-interval %s is too short: the demo target's codes change every %s and each is accepted once", o.demoInterval, min)}
		}
		cfg, err := parseConfig("(built-in demo configuration)", []byte(demoConfig(o.demoListen)), os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("built-in demo configuration: %w", err)
		}
		o.override(cfg)
		for i := range cfg.Probes {
			p := &cfg.Probes[i]
			p.Interval = config.Dur(o.demoInterval)
			if p.Timeout.D > o.demoInterval {
				p.Timeout = config.Dur(o.demoInterval)
			}
		}
		return cfg, nil
	}
	data, err := os.ReadFile(o.configPath)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := parseConfig(o.configPath, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	o.override(cfg)
	return cfg, nil
}

// override applies command-line choices that beat the file.
func (o *options) override(cfg *appConfig) {
	if o.location != "" {
		cfg.Location = o.location
	}
}

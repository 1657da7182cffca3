package notify

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/candorhq/candor/internal/config"
)

// Defaults of the delivery policy.
const (
	DefaultMaxAttempts  = 12               // failed attempts before a delivery is dead
	DefaultBackoffBase  = 2 * time.Second  // first retry after about this long
	DefaultBackoffMax   = 10 * time.Minute // retries never wait longer than this
	DefaultPollInterval = 5 * time.Second  // look for work this often even without a notice
	DefaultHoldRetry    = time.Minute      // a channel that cannot work (bad token) is tried again this often
	DefaultSlackAPIURL  = "https://slack.com/api/"
)

// Config is the notify: section of the configuration:
//
//	notify:
//	  slack:
//	    token: ${SLACK_BOT_TOKEN}          # xoxb-…: chat:write, channels:history (groups:history for a private channel)
//	    signing_secret: ${SLACK_SIGNING_SECRET}  # /candor and buttons over HTTP
//	    app_token: ${SLACK_APP_TOKEN}            # or over Socket Mode (xapp-…)
//	    public_channel: C0123PUBLIC      # announcements: published incidents only
//	    oncall_channel: C0456ONCALL      # every incident, runbooks, reminders
//	    api_url: https://slack.com/api/  # another Slack-compatible endpoint
//	  webhooks:
//	    allow_private: false             # true: subscribers may be on loopback or private networks
//	    pause_after: 10                  # failures in a row before an endpoint is paused
//	    timeout: 10s
//	  delivery:
//	    max_attempts: 12
//	    backoff_base: 2s
//	    backoff_max: 10m
//	    poll_interval: 5s
//	  email:                             # see EmailConfig
//	    host: smtp.example.com
//	    from: "Example Status <status@example.com>"
type Config struct {
	Slack    SlackConfig    `yaml:"slack"`
	Webhooks WebhookConfig  `yaml:"webhooks"`
	Delivery DeliveryConfig `yaml:"delivery"`
	Email    EmailConfig    `yaml:"email"`
}

// WebhookConfig is the notify.webhooks: section. Subscribers themselves
// are managed in the console and the API (Relay.AddWebhook).
type WebhookConfig struct {
	// AllowPrivate lets subscribers use loopback and private addresses
	// (receivers inside your network). Off, such URLs are refused and so is
	// any connection that resolves to one (SSRF guard).
	AllowPrivate bool `yaml:"allow_private"`
	// PauseAfter: an endpoint failing this many times in a row is paused
	// until its owner resumes it (default 10).
	PauseAfter int             `yaml:"pause_after"`
	Timeout    config.Duration `yaml:"timeout"` // per request (default 10s)
}

func (w WebhookConfig) withDefaults() WebhookConfig {
	if w.PauseAfter <= 0 {
		w.PauseAfter = DefaultWebhookPauseAfter
	}
	w.Timeout = config.Dur(w.Timeout.Or(DefaultWebhookTimeout))
	return w
}

// SlackConfig is the notify.slack: section. Slack is on when a token is set.
type SlackConfig struct {
	Token         config.Secret `yaml:"token"`
	SigningSecret config.Secret `yaml:"signing_secret"`
	AppToken      config.Secret `yaml:"app_token"` // xapp-…: commands over Socket Mode, no public URL
	PublicChannel string        `yaml:"public_channel"`
	OncallChannel string        `yaml:"oncall_channel"`
	APIURL        string        `yaml:"api_url"`
}

// Enabled reports whether Slack is configured.
func (s SlackConfig) Enabled() bool { return s.Token.IsSet() }

// apiURL returns the API base URL with the trailing slash slack-go expects.
func (s SlackConfig) apiURL() string {
	u := strings.TrimSpace(s.APIURL)
	if u == "" {
		return DefaultSlackAPIURL
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// DeliveryConfig is the notify.delivery: section: how failed deliveries are
// retried.
type DeliveryConfig struct {
	MaxAttempts  int             `yaml:"max_attempts"`
	BackoffBase  config.Duration `yaml:"backoff_base"`
	BackoffMax   config.Duration `yaml:"backoff_max"`
	PollInterval config.Duration `yaml:"poll_interval"`
}

func (d DeliveryConfig) withDefaults() DeliveryConfig {
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	d.BackoffBase = config.Dur(d.BackoffBase.Or(DefaultBackoffBase))
	d.BackoffMax = config.Dur(d.BackoffMax.Or(DefaultBackoffMax))
	d.PollInterval = config.Dur(d.PollInterval.Or(DefaultPollInterval))
	return d
}

// A Slack channel id (C…, G…, D…) or a name (#status, status).
var slackChannelRE = regexp.MustCompile(`^(#?[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{2,20})$`)

// Check reports every problem in cfg at its YAML path under path (usually
// "$.notify"). The secrets were resolved by Checker.Decode.
func Check(c *config.Checker, path string, cfg *Config) {
	if path == "" {
		path = "$.notify"
	}
	s := cfg.Slack
	sp := path + ".slack"
	if s.Enabled() {
		if s.PublicChannel == "" && s.OncallChannel == "" {
			c.Errorf(sp, "slack has a token but no channel: set public_channel, oncall_channel or both")
		}
	} else if s.PublicChannel != "" || s.OncallChannel != "" {
		c.Errorf(sp, "slack channels are set but no token: set token (for example ${SLACK_BOT_TOKEN})")
	}
	for key, ch := range map[string]string{"public_channel": s.PublicChannel, "oncall_channel": s.OncallChannel} {
		if ch != "" && !slackChannelRE.MatchString(ch) {
			c.Errorf(sp+"."+key, "%q is not a Slack channel: use its id (C0123ABCD) or its name (#status)", ch)
		}
	}
	if s.PublicChannel != "" && s.PublicChannel == s.OncallChannel {
		c.Errorf(sp+".oncall_channel", "the on-call channel must not be the public channel: unpublished security incidents go to on-call only")
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.Errorf(sp+".api_url", "api_url %q must be an absolute http or https URL, such as https://slack.com/api/", s.APIURL)
		}
	}
	if cfg.Webhooks.PauseAfter < 0 {
		c.Errorf(path+".webhooks.pause_after", "pause_after must be positive")
	}
	checkEmail(c, path+".email", cfg.Email)
	d := cfg.Delivery
	dp := path + ".delivery"
	if d.MaxAttempts < 0 {
		c.Errorf(dp+".max_attempts", "max_attempts must be positive")
	}
	if d.BackoffBase.D != 0 && d.BackoffMax.D != 0 && d.BackoffBase.D > d.BackoffMax.D {
		c.Errorf(dp+".backoff_base", "backoff_base (%s) is longer than backoff_max (%s)", d.BackoffBase.D, d.BackoffMax.D)
	}
	if d.PollInterval.D != 0 && d.PollInterval.D < 100*time.Millisecond {
		c.Errorf(dp+".poll_interval", "poll_interval %s is too short: use 100ms or more", d.PollInterval.D)
	}
}

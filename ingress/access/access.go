package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
)

// Mode says who holds the Gemini keys.
type Mode string

// Modes.
const (
	// ModeGateway: the pool is server-side; clients present tokens the operator
	// issued (NewToken), checked against the tokens file.
	ModeGateway Mode = "gateway"
	// ModePassthrough: clients present their own Gemini keys, one or several separated
	// by commas (the seed's mode); the pool of a request is those keys, each its own
	// project unless the keys config lists it, with quotas tracked by hash.
	ModePassthrough Mode = "passthrough"
)

// Config configures access. Every field has a default.
type Config struct {
	// Mode of the deployment. Default gateway.
	Mode Mode
	// TokensFile is the JSON tokens file (gateway mode). Required in gateway mode.
	TokensFile string
	// AdminToken guards the admin API; the admin API is off without one. Compared in
	// constant time.
	AdminToken Secret
	// FailureLimit is how many failed authentications a source may make within
	// FailureWindow before it is refused with 429 until the window ends. Default 10;
	// negative disables the limit.
	FailureLimit int
	// FailureWindow defaults to one minute.
	FailureWindow time.Duration
	// MaxPassthroughKeys bounds the keys one pass-through request may carry. Default 16.
	MaxPassthroughKeys int
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeGateway
	}
	switch {
	case c.FailureLimit == 0:
		c.FailureLimit = 10
	case c.FailureLimit < 0:
		c.FailureLimit = 0
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = time.Minute
	}
	if c.MaxPassthroughKeys <= 0 {
		c.MaxPassthroughKeys = 16
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	switch c.Mode {
	case ModeGateway:
		if c.TokensFile == "" {
			errs = append(errs, errors.New("gateway mode needs a tokens file"))
		}
	case ModePassthrough:
	default:
		errs = append(errs, fmt.Errorf("mode %q unknown: use %s or %s", c.Mode, ModeGateway, ModePassthrough))
	}
	if !c.AdminToken.IsZero() && len(c.AdminToken.Reveal()) < 16 {
		errs = append(errs, errors.New("admin token shorter than 16 characters"))
	}
	return errors.Join(errs...)
}

// KeyResolver turns a pass-through client's key into a pool Key; *keypool.Pool is one.
type KeyResolver interface {
	PassthroughKey(secret string) *keypool.Key
}

// Options carry the dependencies.
type Options struct {
	// Valkey holds the per-token request counters, shared by the replicas. Nil keeps
	// them in this instance only.
	Valkey valkey.Client
	// Prefix of the Valkey keys. Default schemas.DefaultPrefix.
	Prefix string
	// Timeout of a Valkey call; beyond it the limits are enforced locally. Default 100ms.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Principal is who a request acts for.
type Principal struct {
	Mode Mode
	// TokenHash identifies the gateway token in events and logs (schemas.HashToken);
	// empty in pass-through mode.
	TokenHash string
	// Name is the token's name; empty in pass-through mode.
	Name string
	// AllowedModels are the models the token may use; nil means all.
	AllowedModels []string
	// Keys is the pool of a pass-through request: the client's own keys.
	Keys []*keypool.Key

	token *Token
}

// Allows reports whether the principal may use model.
func (p *Principal) Allows(model string) bool {
	return p.token == nil || p.token.allows(model)
}

// Authenticator checks credentials and per-token limits. Safe for concurrent use.
type Authenticator struct {
	cfg      Config
	keys     KeyResolver
	now      func() time.Time
	log      *slog.Logger
	tokens   atomic.Pointer[tokenStore]
	failures *failureLimiter
	limits   *tokenLimiter
	adminSum [32]byte
	metrics  *accessMetrics
}

type accessMetrics struct {
	auth     *prometheus.CounterVec
	admit    *prometheus.CounterVec
	blocked  prometheus.Counter
	degraded prometheus.Gauge
}

// New builds an authenticator; in gateway mode it loads and validates the tokens file.
func New(cfg Config, keys KeyResolver, opts Options) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("access config: %w", err)
	}
	cfg.setDefaults()
	if opts.Prefix == "" {
		opts.Prefix = schemas.DefaultPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if cfg.Mode == ModePassthrough && keys == nil {
		return nil, errors.New("pass-through mode needs a key resolver")
	}
	f := promauto.With(opts.Registerer)
	m := &accessMetrics{
		auth: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_access_authentications_total",
			Help: "Client authentications by result (ok or the error code).",
		}, []string{"result"}),
		admit: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_access_admissions_total",
			Help: "Per-request admission checks (allowed models, token RPM and daily limits) by result.",
		}, []string{"result"}),
		blocked: f.NewCounter(prometheus.CounterOpts{
			Name: "gca_ingress_access_sources_blocked_total",
			Help: "Sources blocked for too many failed authentications.",
		}),
		degraded: f.NewGauge(prometheus.GaugeOpts{
			Name: "gca_ingress_access_limits_degraded",
			Help: "1 while Valkey is unreachable and token limits are enforced per instance.",
		}),
	}
	a := &Authenticator{
		cfg:      cfg,
		keys:     keys,
		now:      opts.Now,
		log:      opts.Logger.With("component", "access"),
		failures: newFailureLimiter(cfg.FailureLimit, cfg.FailureWindow, 100_000),
		metrics:  m,
	}
	a.limits = newTokenLimiter(opts.Valkey, opts.Prefix, opts.Timeout, func(d bool) {
		if d {
			m.degraded.Set(1)
			a.log.Warn("valkey unreachable: token limits enforced per instance")
		} else {
			m.degraded.Set(0)
		}
	})
	if !cfg.AdminToken.IsZero() {
		a.adminSum = cfg.AdminToken.sum()
	}
	a.tokens.Store(&tokenStore{byHash: map[[32]byte]*Token{}})
	if cfg.Mode == ModeGateway {
		if err := a.Reload(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Mode is the deployment's mode.
func (a *Authenticator) Mode() Mode { return a.cfg.Mode }

// Reload re-reads the tokens file (gateway mode); a file that fails to load or
// validate leaves the current tokens in place.
func (a *Authenticator) Reload() error {
	if a.cfg.Mode != ModeGateway {
		return nil
	}
	f, err := LoadTokens(a.cfg.TokensFile)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("tokens file %s: %w", a.cfg.TokensFile, err)
	}
	a.tokens.Store(newTokenStore(f))
	return nil
}

// passthroughKey is what a Gemini key may look like ("AIza" and 35 more today).
var passthroughKey = regexp.MustCompile(`^[A-Za-z0-9_.-]{8,256}$`)

// Authenticate identifies the client of r. clientIP is the address failures are
// counted against (the caller decides whether proxies' headers are trusted). In
// gateway mode the credential must be a known, enabled token; in pass-through mode it
// is one or several comma-separated Gemini keys.
func (a *Authenticator) Authenticate(r *http.Request, clientIP string) (*Principal, error) {
	p, err := a.authenticate(r, clientIP)
	result := "ok"
	if err != nil {
		result = "error"
		var e *Error
		if errors.As(err, &e) {
			result = e.Code
		}
	}
	a.metrics.auth.WithLabelValues(result).Inc()
	return p, err
}

func (a *Authenticator) authenticate(r *http.Request, clientIP string) (*Principal, error) {
	now := a.now()
	if a.cfg.Mode == ModePassthrough {
		c, err := Extract(r)
		if err != nil {
			return nil, err
		}
		return a.passthrough(c)
	}
	src := sourceKey(clientIP)
	if until, blocked := a.failures.blocked(src, now); blocked {
		return nil, ErrTooManyFailures.until(until)
	}
	c, err := Extract(r)
	if err != nil {
		if errors.Is(err, ErrMalformedCredential) || errors.Is(err, ErrUnsupportedScheme) {
			a.fail(src, now)
		}
		return nil, err
	}
	t := a.tokens.Load().lookup(c.Value)
	if t == nil {
		a.fail(src, now)
		return nil, ErrInvalidToken
	}
	if t.Disabled {
		return nil, ErrTokenDisabled
	}
	return &Principal{
		Mode:          ModeGateway,
		TokenHash:     schemas.HashToken(c.Value),
		Name:          t.Name,
		AllowedModels: t.Models,
		token:         t,
	}, nil
}

func (a *Authenticator) fail(src string, now time.Time) {
	if _, blocked := a.failures.fail(src, now); blocked {
		a.metrics.blocked.Inc()
		a.log.Warn("authentication failures: source blocked", "source", src, "limit", a.cfg.FailureLimit, "window", a.cfg.FailureWindow)
	}
}

func (a *Authenticator) passthrough(c Credential) (*Principal, error) {
	var keys []*keypool.Key
	seen := map[string]bool{}
	for i, s := range strings.Split(c.Value, ",") {
		if s == "" {
			continue
		}
		if !passthroughKey.MatchString(s) {
			return nil, ErrMalformedCredential.with("key %d in %s is not a Gemini API key", i+1, c.Source)
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		if len(keys) == a.cfg.MaxPassthroughKeys {
			return nil, ErrMalformedCredential.with("more than %d keys in %s", a.cfg.MaxPassthroughKeys, c.Source)
		}
		keys = append(keys, a.keys.PassthroughKey(s))
	}
	if len(keys) == 0 {
		return nil, ErrNoCredential
	}
	return &Principal{Mode: ModePassthrough, Keys: keys}, nil
}

// Admit checks that the principal may send a request for model now: the token's
// allowed models, then its per-minute and per-day request limits (counted when
// admitted, shared by the replicas through Valkey). Pass-through principals have no
// limits of their own: their keys' quotas are the limit.
func (a *Authenticator) Admit(ctx context.Context, p *Principal, model string) error {
	err := a.admit(ctx, p, model)
	result := "ok"
	if err != nil {
		result = "error"
		var e *Error
		if errors.As(err, &e) {
			result = e.Code
		}
	}
	a.metrics.admit.WithLabelValues(result).Inc()
	return err
}

func (a *Authenticator) admit(ctx context.Context, p *Principal, model string) error {
	if p.token == nil {
		return nil
	}
	if !p.token.allows(model) {
		return ErrModelNotAllowed.with("model %q not allowed for token %q", keypool.NormalizeModel(model), p.Name)
	}
	return a.limits.admit(ctx, p.TokenHash, p.token.RPM, p.token.RPD, a.now())
}

// CheckAdmin checks the admin token of r (any credential location) in constant time.
// Failures count toward the source's failure limit, like bad tokens.
func (a *Authenticator) CheckAdmin(r *http.Request, clientIP string) error {
	if a.cfg.AdminToken.IsZero() {
		return ErrAdminDisabled
	}
	now := a.now()
	src := "admin|" + sourceKey(clientIP)
	if until, blocked := a.failures.blocked(src, now); blocked {
		return ErrTooManyFailures.until(until)
	}
	c, err := Extract(r)
	if err != nil {
		a.fail(src, now)
		return ErrAdminUnauthorized
	}
	// Both sides are SHA-256 sums, so the comparison takes the same time whatever the
	// presented token's length.
	sum := sha256.Sum256([]byte(c.Value))
	if subtle.ConstantTimeCompare(sum[:], a.adminSum[:]) != 1 {
		a.fail(src, now)
		return ErrAdminUnauthorized
	}
	return nil
}

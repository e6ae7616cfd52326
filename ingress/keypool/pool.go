package keypool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Options tune a Pool. Every field has a default.
type Options struct {
	// Prefix of the Valkey keys. Default schemas.DefaultPrefix.
	Prefix string
	// Strategy is the default selection strategy. Default MostHeadroom.
	Strategy Strategy
	// Timeout bounds each Valkey call on the request path (reservation, release). A
	// call that exceeds it counts as Valkey being unreachable: the pool turns degraded
	// and selects from its local view. It times the call as the caller sees it, which
	// includes waiting for a CPU: under a burst on a busy ingress that alone reaches
	// 100 ms while Valkey answers in microseconds, so the default leaves room for it
	// (the ingress's GCA_VALKEY_TIMEOUT has the same default). Default 250ms.
	Timeout time.Duration
	// RefreshInterval is the period of the background refresh of the view (Run), which
	// is also how often a degraded pool probes Valkey. Default 1s.
	RefreshInterval time.Duration
	// RefreshTimeout bounds one refresh. Default 1s.
	RefreshTimeout time.Duration
	// ActiveFor is how long a model stays in the refresh after its last selection, and
	// how long a pass-through client's pair stays in the view. Default 5m.
	ActiveFor time.Duration
	// MaxFails is how many failures (5xx, timeouts) since a key's last success, all
	// within FailWindow, open its circuit: the key is skipped until the oldest of them
	// leaves the window (passive health, as caddy's reverse proxy). 0 uses the
	// default 3; negative disables circuits.
	MaxFails int
	// FailWindow is how long a failure counts toward MaxFails. Default 30s.
	FailWindow time.Duration
	// InstanceID prefixes reservation ids. Default: 8 random bytes in hex.
	InstanceID string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand breaks ties and draws the weighted strategy. It is used under a lock.
	// Default: the runtime's random source.
	Rand *mrand.Rand
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: none (a private registry).
	Registerer prometheus.Registerer
}

func (o *Options) setDefaults() error {
	if o.Prefix == "" {
		o.Prefix = schemas.DefaultPrefix
	}
	if o.Strategy == "" {
		o.Strategy = MostHeadroom
	}
	if !o.Strategy.valid() {
		return fmt.Errorf("strategy %q unknown: use %s, %s or %s", o.Strategy, MostHeadroom, RoundRobin, Weighted)
	}
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = time.Second
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = time.Second
	}
	if o.ActiveFor <= 0 {
		o.ActiveFor = 5 * time.Minute
	}
	switch {
	case o.MaxFails == 0:
		o.MaxFails = 3
	case o.MaxFails < 0:
		o.MaxFails = 0
	}
	if o.FailWindow <= 0 {
		o.FailWindow = 30 * time.Second
	}
	if o.InstanceID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("instance id: %w", err)
		}
		o.InstanceID = hex.EncodeToString(b[:])
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	return nil
}

// Pool selects keys for requests. It is safe for concurrent use. Run must be running
// for the view to stay fresh and for a degraded pool to notice that Valkey is back.
type Pool struct {
	client  valkey.Client
	keys    schemas.Keys
	opts    Options
	log     *slog.Logger
	metrics *metrics
	script  *valkey.Lua
	// settleScript and handoverScript maintain the pending reservations outside the
	// reservation script (pending.go).
	settleScript   *valkey.Lua
	handoverScript *valkey.Lua

	set  atomic.Pointer[keySet]
	view *view

	// degraded is set while Valkey is unreachable; epoch numbers the outages, so the
	// local admission counts of one outage never leak into the next.
	degraded atomic.Bool
	epoch    atomic.Uint64

	rr     atomic.Uint64 // round-robin position among projects
	resSeq atomic.Uint64 // reservation id sequence
	// callSeq numbers the script calls as they are issued, so that the view keeps the
	// newest reply of a pair when replies come back out of order (see pairState.apply).
	callSeq atomic.Uint64

	randMu sync.Mutex

	// win caches the windows of the current minute: the Pacific day takes a time zone
	// conversion and a format, on every selection otherwise.
	win atomic.Pointer[window]

	modelsMu sync.Mutex
	models   map[string]time.Time // model -> last selection, for the refresh

	orphansMu sync.Mutex
	orphans   []orphan

	// local holds the local leases of the current outage until Valkey has them
	// (handover.go), by reservation id.
	localMu sync.Mutex
	local   map[string]localLease
}

// orphan is a reservation that must be deleted but could not be (Valkey was down, or a
// reservation call timed out and may have been applied). The refresh retries them.
type orphan struct{ project, model, id string }

const maxOrphans = 10_000

// New builds a pool over the client from a validated config.
func New(client valkey.Client, cfg *Config, opts Options) (*Pool, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("key pool config: %w", err)
	}
	p := &Pool{
		client:         client,
		keys:           schemas.Keys{Prefix: opts.Prefix},
		opts:           opts,
		log:            opts.Logger.With("component", "keypool"),
		metrics:        newMetrics(opts.Registerer),
		script:         valkey.NewLuaScript(reserveLua),
		settleScript:   valkey.NewLuaScript(settleLua),
		handoverScript: valkey.NewLuaScript(handoverLua),
		view:           newView(),
		models:         map[string]time.Time{},
	}
	set := newKeySet(cfg)
	p.set.Store(set)
	p.metrics.configuredKeys.Set(float64(len(set.keys)))
	return p, nil
}

// Reload validates cfg and swaps the pool's key set atomically. Leases already
// granted keep their keys and are released as usual; a removed key is no longer
// selected, an added one is from the next Select on. State (counters, cool-downs,
// health) is keyed by project and hash, so it survives the swap.
func (p *Pool) Reload(cfg *Config) (Change, error) {
	if err := cfg.Validate(); err != nil {
		p.metrics.reloads.WithLabelValues("invalid").Inc()
		return Change{}, fmt.Errorf("reload key pool: %w", err)
	}
	set := newKeySet(cfg)
	old := p.set.Swap(set)
	p.metrics.reloads.WithLabelValues("ok").Inc()
	p.metrics.configuredKeys.Set(float64(len(set.keys)))
	c := diffSets(old, set)
	p.log.Info("key pool reloaded", "keys", len(set.keys), "projects", len(set.projects), "added", len(c.Added), "removed", len(c.Removed))
	return c, nil
}

// PassthroughKey returns the Key for a key a pass-through client sent: the pool's own
// Key when the config lists it (so its project and tier apply), else a key that is its
// own project, of the configured passthrough tier.
func (p *Pool) PassthroughKey(secret string) *Key {
	set := p.set.Load()
	if k := set.byHash[schemas.HashKey(secret)]; k != nil {
		return k
	}
	return newPassthroughKey(secret, set.passthroughTier, set.passthroughLimits)
}

// Degraded reports whether Valkey is unreachable and selection runs on the local view.
func (p *Pool) Degraded() bool { return p.degraded.Load() }

func (p *Pool) setDegraded(err error) {
	if p.degraded.CompareAndSwap(false, true) {
		p.epoch.Add(1)
		p.metrics.degraded.Set(1)
		p.log.Warn("valkey unreachable: selecting keys from the local view within local limits", "err", err)
	}
}

func (p *Pool) clearDegraded() {
	if p.degraded.CompareAndSwap(true, false) {
		// A new epoch: the outage's local admissions are Valkey's business now (their
		// events carry them to the counters), and counting them here too would hold
		// back quota for the rest of the day.
		p.epoch.Add(1)
		p.metrics.degraded.Set(0)
		p.log.Info("valkey reachable again: selecting keys with reservations")
	}
}

// windowOf returns the quota windows of now.
func (p *Pool) windowOf(now time.Time) window {
	m := schemas.MinuteOf(now)
	if w := p.win.Load(); w != nil && w.minute == m {
		return *w
	}
	w := windowOf(now)
	p.win.Store(&w)
	return w
}

func (p *Pool) float64() float64 {
	if p.opts.Rand == nil {
		return mrand.Float64()
	}
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return p.opts.Rand.Float64()
}

// newReservationID returns an id unique across replicas and restarts: the instance id
// (random per process unless configured) and a sequence number.
func (p *Pool) newReservationID() string {
	return p.opts.InstanceID + "-" + uitoa36(p.resSeq.Add(1))
}

func uitoa36(n uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [13]byte
	i := len(b)
	for {
		i--
		b[i] = digits[n%36]
		n /= 36
		if n == 0 {
			return string(b[i:])
		}
	}
}

func (p *Pool) noteModel(model string, now time.Time) {
	p.modelsMu.Lock()
	if t, ok := p.models[model]; !ok || now.Sub(t) > time.Second {
		p.models[model] = now
	}
	p.modelsMu.Unlock()
}

func (p *Pool) activeModels(now time.Time) []string {
	p.modelsMu.Lock()
	defer p.modelsMu.Unlock()
	var out []string
	for m, t := range p.models {
		if now.Sub(t) > p.opts.ActiveFor {
			delete(p.models, m)
			continue
		}
		out = append(out, m)
	}
	return out
}

func (p *Pool) addOrphan(o orphan) {
	p.orphansMu.Lock()
	defer p.orphansMu.Unlock()
	if len(p.orphans) >= maxOrphans {
		p.metrics.orphansDropped.Inc()
		return
	}
	p.orphans = append(p.orphans, o)
}

// evalMulti runs several reservation scripts in one round trip (DoMulti), loading the
// script once if the server does not know it yet.
func (p *Pool) evalMulti(ctx context.Context, calls []scriptCall) []valkey.ValkeyResult {
	build := func() valkey.Commands {
		cmds := make(valkey.Commands, 0, len(calls))
		for _, c := range calls {
			cmds = append(cmds, p.client.B().Evalsha().Sha1(p.scriptSHA()).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build())
		}
		return cmds
	}
	res := p.client.DoMulti(ctx, build()...)
	for _, r := range res {
		if e, ok := valkey.IsValkeyErr(r.Error()); ok && e.IsNoScript() {
			if err := p.client.Do(ctx, p.client.B().ScriptLoad().Script(reserveLua).Build()).Error(); err != nil {
				return res
			}
			return p.client.DoMulti(ctx, build()...)
		}
	}
	return res
}

var scriptSHA = sync.OnceValue(func() string { return sha1Hex(reserveLua) })

func (p *Pool) scriptSHA() string { return scriptSHA() }

// AnyKey returns the secret of a configured key that is not known to be disabled, for
// calls that need some key but no quota (listing models); "" when there is none.
func (p *Pool) AnyKey() string {
	now := p.opts.Now()
	degraded := p.Degraded()
	for _, k := range p.set.Load().keys {
		ks := p.view.key(k.hash)
		ks.mu.Lock()
		dis := ks.disabled(now, degraded)
		ks.mu.Unlock()
		if dis == "" {
			return k.secret.Reveal()
		}
	}
	return ""
}

package keypool

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync/atomic"
)

// Key is one Gemini API key with what the pool knows about it. Keys are immutable; a
// reload builds new ones, and a lease keeps the Key it was given.
type Key struct {
	secret  Secret
	hash    string
	name    string
	models  []string // nil: every model
	weight  int
	project *project
	// configured is false for a pass-through client's key that the config does not list.
	configured bool
}

// project is a Google Cloud project: the unit that owns quotas.
type project struct {
	id     string
	tier   string
	limits limitTable
	keys   []*Key
	// rr rotates the order in which the project's keys are offered.
	rr atomic.Uint64
}

// Hash is the key's identifier (schemas.HashKey).
func (k *Key) Hash() string { return k.hash }

// Project is the id of the key's project.
func (k *Key) Project() string { return k.project.id }

// Tier is the tier of the key's project.
func (k *Key) Tier() string { return k.project.tier }

// Secret is the key itself, for the upstream call's x-goog-api-key header.
func (k *Key) Secret() Secret { return k.secret }

// Name is the operator's label, if any.
func (k *Key) Name() string { return k.name }

// Models is the key's allow-list; nil means every model.
func (k *Key) Models() []string { return slices.Clone(k.models) }

// Weight is the key's share under the weighted strategy.
func (k *Key) Weight() int { return k.weight }

// Configured reports whether the key is in the pool's config (false for a
// pass-through client's own key).
func (k *Key) Configured() bool { return k.configured }

// Allows reports whether the key may serve model.
func (k *Key) Allows(model string) bool {
	return k.models == nil || slices.Contains(k.models, model)
}

// Limits returns the limits of the key's project for model.
func (k *Key) Limits(model string) Limits { return k.project.limits.get(model) }

// String prints the hash, never the key.
func (k *Key) String() string { return k.hash }

// Format prints the hash for every verb, also for a Key value, whose unexported
// secret fmt would otherwise print by reflection.
func (k Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte("key:" + k.hash)) }

// LogValue makes slog print the hash.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.hash) }

// MarshalJSON writes the key's KeyInfo.
func (k *Key) MarshalJSON() ([]byte, error) { return json.Marshal(keyInfo(k)) }

// KeyFromSecret builds a key that the pool's config does not list: a pass-through
// client's own key. It is its own project (named by its hash), of the free tier with
// the built-in limits. Pool.PassthroughKey is usually what you want: it returns the
// configured key when the pool lists the same key, and uses the configured
// passthrough tier and limit overrides.
func KeyFromSecret(secret string) *Key {
	return newPassthroughKey(secret, TierFree, buildLimitTable(TierFree, nil, nil))
}

func newPassthroughKey(secret, tier string, limits limitTable) *Key {
	s := NewSecret(secret)
	h := s.Hash()
	return &Key{
		secret:  s,
		hash:    h,
		weight:  1,
		project: &project{id: h, tier: tier, limits: limits},
	}
}

// keySet is an immutable snapshot of the configured pool, swapped whole on reload.
type keySet struct {
	keys     []*Key
	byHash   map[string]*Key
	projects []*project // sorted by id
	// passthroughTier and passthroughLimits apply to clients' keys the pool does not list.
	passthroughTier   string
	passthroughLimits limitTable
}

// newKeySet resolves a validated config.
func newKeySet(cfg *Config) *keySet {
	tiers := map[string]string{}
	overrides := map[string]map[string]Limits{}
	for _, p := range cfg.Projects {
		if p.Tier != "" {
			tiers[p.ID] = p.Tier
		}
		overrides[p.ID] = p.Limits
	}
	for _, k := range cfg.Keys {
		if k.Tier == "" {
			continue
		}
		p := k.Project
		if p == "" {
			p = k.Key.Hash()
		}
		if _, ok := tiers[p]; !ok {
			tiers[p] = k.Tier
		}
	}
	set := &keySet{
		byHash:            map[string]*Key{},
		passthroughTier:   cfg.passthroughTier(),
		passthroughLimits: buildLimitTable(cfg.passthroughTier(), cfg.Limits[cfg.passthroughTier()], nil),
	}
	projects := map[string]*project{}
	for _, kc := range cfg.Keys {
		h := kc.Key.Hash()
		pid := kc.Project
		if pid == "" {
			pid = h
		}
		p := projects[pid]
		if p == nil {
			tier := tiers[pid]
			if tier == "" {
				tier = cfg.defaultTier()
			}
			p = &project{id: pid, tier: tier, limits: buildLimitTable(tier, cfg.Limits[tier], overrides[pid])}
			projects[pid] = p
			set.projects = append(set.projects, p)
		}
		weight := kc.Weight
		if weight == 0 {
			weight = 1
		}
		var models []string
		for _, m := range kc.Models {
			models = append(models, NormalizeModel(m))
		}
		k := &Key{secret: kc.Key, hash: h, name: kc.Name, models: models, weight: weight, project: p, configured: true}
		p.keys = append(p.keys, k)
		set.keys = append(set.keys, k)
		set.byHash[h] = k
	}
	sort.Slice(set.projects, func(i, j int) bool { return set.projects[i].id < set.projects[j].id })
	return set
}

// Change says which keys a reload added and removed, by hash, so the caller can emit
// key_added and key_removed events.
type Change struct {
	Added   []string
	Removed []string
}

func diffSets(old, cur *keySet) Change {
	var c Change
	for h := range cur.byHash {
		if old == nil || old.byHash[h] == nil {
			c.Added = append(c.Added, h)
		}
	}
	if old != nil {
		for h := range old.byHash {
			if cur.byHash[h] == nil {
				c.Removed = append(c.Removed, h)
			}
		}
	}
	sort.Strings(c.Added)
	sort.Strings(c.Removed)
	return c
}

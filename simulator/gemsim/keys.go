package gemsim

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// keyEntry is one known API key: its project, whether it is forbidden, and how many
// responses of each status code it received.
type keyEntry struct {
	key       string
	project   *project
	forbidden bool

	mu    sync.Mutex
	codes map[int]int64
}

// record counts one response. Code 0 stands for a connection the simulator reset or
// cut on purpose.
func (k *keyEntry) record(code int) {
	k.mu.Lock()
	k.codes[code]++
	k.mu.Unlock()
}

// counts copies the per-status counters.
func (k *keyEntry) counts() map[int]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.codes)
}

// reset clears the per-status counters.
func (k *keyEntry) reset() {
	k.mu.Lock()
	clear(k.codes)
	k.mu.Unlock()
}

// keyTable is an immutable snapshot of the pool; the hot path reads it without a lock.
type keyTable struct {
	keys     map[string]*keyEntry
	projects map[string]*project
	// order lists project ids in the order they were added, for stable output.
	order []string
}

// keyring holds the current keyTable and serialises the writers that replace it.
type keyring struct {
	mu        sync.Mutex
	table     atomic.Pointer[keyTable]
	overrides map[string]Limits
}

// newKeyring returns an empty keyring whose projects get the given limit overrides.
func newKeyring(overrides map[string]Limits) *keyring {
	kr := &keyring{overrides: overrides}
	kr.table.Store(&keyTable{keys: map[string]*keyEntry{}, projects: map[string]*project{}})
	return kr
}

// lookup returns the entry of a key, or nil when the key is unknown.
func (kr *keyring) lookup(key string) *keyEntry {
	return kr.table.Load().keys[key]
}

// snapshot returns the current table. It must not be modified.
func (kr *keyring) snapshot() *keyTable {
	return kr.table.Load()
}

// add adds projects and keys. A project that already exists gains the new keys and keeps
// its quota state; a key that already exists anywhere is an error, and nothing is added.
func (kr *keyring) add(projects []ProjectConfig) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := kr.table.Load()
	taken := make(map[string]bool, len(old.keys))
	for k := range old.keys {
		taken[k] = true
	}
	if errs := validateProjects(projects, taken); len(errs) > 0 {
		return fmt.Errorf("add projects: %w", errors.Join(errs...))
	}
	next := &keyTable{
		keys:     maps.Clone(old.keys),
		projects: maps.Clone(old.projects),
		order:    append([]string(nil), old.order...),
	}
	for _, pc := range projects {
		tier := pc.Tier
		if tier == "" {
			tier = TierFree
		}
		p := next.projects[pc.ID]
		switch {
		case p == nil:
			p = newProject(pc.ID, tier, projectLimits(tier, kr.overrides))
			next.projects[pc.ID] = p
			next.order = append(next.order, pc.ID)
		case pc.Tier != "" && p.tier != tier:
			return fmt.Errorf("add projects: project %s is on tier %s, not %s", pc.ID, p.tier, tier)
		}
		for _, k := range pc.Keys {
			next.keys[k] = &keyEntry{key: k, project: p, codes: map[int]int64{}}
		}
		for _, k := range pc.ForbiddenKeys {
			next.keys[k] = &keyEntry{key: k, project: p, forbidden: true, codes: map[int]int64{}}
		}
	}
	kr.table.Store(next)
	return nil
}

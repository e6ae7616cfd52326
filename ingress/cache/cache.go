// Package cache is the ingress's in-process cache (the seed's memory cache): a bounded
// LRU whose entries expire after a TTL, with hit, miss and eviction counts exported as
// metrics and readable as stats on the admin API. One instance per use — the model
// list (1 h), upstream health (5 min), key metrics (10 min), the optional response
// cache (1 min) — each with its own name, size and TTL.
package cache

import (
	"container/list"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache is safe for concurrent use.
type Cache[V any] struct {
	name string
	size int
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	ll    *list.List // front = most recently used
	items map[string]*list.Element

	hits, misses, evictions, expirations uint64
}

type entry[V any] struct {
	key     string
	value   V
	expires time.Time
}

// New returns a cache of at most size entries that live for ttl. now may be nil.
func New[V any](name string, size int, ttl time.Duration, now func() time.Time) *Cache[V] {
	if size <= 0 {
		size = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{name: name, size: size, ttl: ttl, now: now, ll: list.New(), items: map[string]*list.Element{}}
}

// Get returns the live value for key.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		c.misses++
		return zero, false
	}
	e := el.Value.(*entry[V])
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		c.expirations++
		c.misses++
		return zero, false
	}
	c.ll.MoveToFront(el)
	c.hits++
	return e.value, true
}

// Set stores value under key for the cache's TTL, evicting the least recently used
// entry when full.
func (c *Cache[V]) Set(key string, value V) { c.SetTTL(key, value, c.ttl) }

// SetTTL stores value with its own TTL.
func (c *Cache[V]) SetTTL(key string, value V, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp := c.now().Add(ttl)
	if el, ok := c.items[key]; ok {
		e := el.Value.(*entry[V])
		e.value, e.expires = value, exp
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*entry[V]).key)
		c.evictions++
	}
	c.items[key] = c.ll.PushFront(&entry[V]{key: key, value: value, expires: exp})
}

// Delete removes key.
func (c *Cache[V]) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
}

// Stats are a cache's counters, as the admin API shows them.
type Stats struct {
	Name        string  `json:"name"`
	Entries     int     `json:"entries"`
	MaxEntries  int     `json:"max_entries"`
	TTLSeconds  float64 `json:"ttl_seconds"`
	Hits        uint64  `json:"hits"`
	Misses      uint64  `json:"misses"`
	Evictions   uint64  `json:"evictions"`
	Expirations uint64  `json:"expirations"`
	HitRate     float64 `json:"hit_rate"`
}

// Stats returns the current counters.
func (c *Cache[V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Name: c.name, Entries: c.ll.Len(), MaxEntries: c.size, TTLSeconds: c.ttl.Seconds(),
		Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Expirations: c.expirations}
	if total := c.hits + c.misses; total > 0 {
		s.HitRate = float64(c.hits) / float64(total)
	}
	return s
}

// Collector exports the stats of caches as gca_ingress_cache_* metrics.
type Collector struct {
	stats   func() []Stats
	hits    *prometheus.Desc
	misses  *prometheus.Desc
	evict   *prometheus.Desc
	entries *prometheus.Desc
}

// NewCollector returns a collector over the stats stats returns at each scrape.
func NewCollector(stats func() []Stats) *Collector {
	l := []string{"cache"}
	return &Collector{
		stats:   stats,
		hits:    prometheus.NewDesc("gca_ingress_cache_hits_total", "Cache hits.", l, nil),
		misses:  prometheus.NewDesc("gca_ingress_cache_misses_total", "Cache misses.", l, nil),
		evict:   prometheus.NewDesc("gca_ingress_cache_evictions_total", "Entries evicted because the cache was full.", l, nil),
		entries: prometheus.NewDesc("gca_ingress_cache_entries", "Entries held.", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.evict
	ch <- c.entries
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits), s.Name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses), s.Name)
		ch <- prometheus.MustNewConstMetric(c.evict, prometheus.CounterValue, float64(s.Evictions), s.Name)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries), s.Name)
	}
}

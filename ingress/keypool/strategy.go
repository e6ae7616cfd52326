package keypool

import (
	"math"
	"sort"
	"time"
)

// Strategy orders the projects that may serve a request.
type Strategy string

// Strategies.
const (
	// MostHeadroom tries first the project with the largest remaining fraction of its
	// tightest quota: min over RPM, TPM and RPD of (limit − used) / limit, from the
	// cached view (unlimited quotas count as 1). Projects with equal headroom are
	// ordered at random, so equal projects share the load evenly; across a sequence of
	// requests the rule fills projects like water, each to the same fraction. The
	// default.
	MostHeadroom Strategy = "most_headroom"
	// RoundRobin rotates over the projects (ordered by id), one step per selection.
	RoundRobin Strategy = "round_robin"
	// Weighted draws projects at random with probability proportional to the summed
	// weights of their candidate keys, and keys within a project by their weights, so a
	// key of weight 2 serves twice as many requests as one of weight 1 while both
	// have quota.
	Weighted Strategy = "weighted"
)

func (s Strategy) valid() bool {
	switch s {
	case MostHeadroom, RoundRobin, Weighted:
		return true
	}
	return false
}

// candidate is a project that may serve the request, with its candidate keys.
type candidate struct {
	project *project
	keys    []*Key
	state   *pairState
	limits  Limits
	// headroom is the remaining fraction of the tightest quota, from the view.
	headroom float64
	// blocked says why the view already knows the project cannot serve ("" when it
	// may), and until when.
	blocked      string
	blockedUntil time.Time
	// order is the sort key of the strategy.
	order float64
	tie   float64
}

// headroom computes the remaining fraction of the tightest quota.
func headroom(l Limits, req, tok, dayReq int64) float64 {
	h := 1.0
	frac := func(limit, used int64) {
		if limit > 0 {
			h = math.Min(h, float64(limit-used)/float64(limit))
		}
	}
	frac(l.RPM, req)
	frac(l.TPM, tok)
	frac(l.RPD, dayReq)
	return h
}

// order sorts candidates in the order the strategy tries them.
func (p *Pool) order(s Strategy, cands []*candidate) {
	switch s {
	case RoundRobin:
		sort.Slice(cands, func(i, j int) bool { return cands[i].project.id < cands[j].project.id })
		n := len(cands)
		if n > 1 {
			start := int(p.rr.Add(1)-1) % n
			rotated := make([]*candidate, 0, n)
			rotated = append(rotated, cands[start:]...)
			rotated = append(rotated, cands[:start]...)
			copy(cands, rotated)
		}
	case Weighted:
		// Efraimidis–Spirakis: sorting by u^(1/w) descending draws a weighted random
		// permutation, the first element with probability w / Σw.
		for _, c := range cands {
			w := 0
			for _, k := range c.keys {
				w += k.weight
			}
			c.order = math.Pow(p.float64(), 1/float64(max(w, 1)))
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].order > cands[j].order })
	default:
		for _, c := range cands {
			c.order = c.headroom
			c.tie = p.float64()
		}
		sort.Slice(cands, func(i, j int) bool {
			if cands[i].order != cands[j].order {
				return cands[i].order > cands[j].order
			}
			return cands[i].tie < cands[j].tie
		})
	}
}

// orderKeys orders the candidate keys of one project, the order the reservation script
// tries them in. Keys of one project share its quotas, so the choice only spreads load
// and avoids bad keys: weighted draws by weight; the other strategies rotate, then
// move to the back keys that failed recently (not yet enough to open the circuit) and
// keys whose latency average is more than twice the project's best.
func (p *Pool) orderKeys(s Strategy, c *candidate, health func(*Key) (fails int, ewmaMs float64, samples int64)) {
	keys := c.keys
	if len(keys) < 2 {
		return
	}
	if s == Weighted {
		w := make(map[*Key]float64, len(keys))
		for _, k := range keys {
			w[k] = math.Pow(p.float64(), 1/float64(max(k.weight, 1)))
		}
		sort.SliceStable(keys, func(i, j int) bool { return w[keys[i]] > w[keys[j]] })
		return
	}
	start := int(c.project.rr.Add(1)-1) % len(keys)
	rotated := make([]*Key, 0, len(keys))
	rotated = append(rotated, keys[start:]...)
	rotated = append(rotated, keys[:start]...)
	copy(keys, rotated)

	const minSamples = 5
	best := math.Inf(1)
	rank := make([]int, len(keys))
	ewma := make([]float64, len(keys))
	for i, k := range keys {
		fails, e, n := health(k)
		if fails > 0 {
			rank[i] = 2
		}
		if n >= minSamples {
			ewma[i] = e
			best = math.Min(best, e)
		}
	}
	for i := range keys {
		if rank[i] == 0 && ewma[i] > 0 && ewma[i] > 2*best {
			rank[i] = 1
		}
	}
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rank[idx[a]] < rank[idx[b]] })
	sorted := make([]*Key, len(keys))
	for i, j := range idx {
		sorted[i] = keys[j]
	}
	copy(keys, sorted)
}

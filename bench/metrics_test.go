//go:build bench

package bench

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// promSums reads a Prometheus text exposition at url and returns, for each name, the
// sum of its samples over every label set. A name with labels ("x_sum{op=\"a\"}")
// matches that series alone.
func promSums(url string, names ...string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		for _, n := range names {
			if series == n || (!strings.Contains(n, "{") && strings.HasPrefix(series, n+"{")) {
				if v, err := strconv.ParseFloat(value, 64); err == nil {
					out[n] += v
				}
			}
		}
	}
	return out, sc.Err()
}

// Series of the ingress that explain where a request's time goes.
const (
	reserveSum    = `gca_ingress_keypool_valkey_seconds_sum{op="reserve"}`
	reserveCount  = `gca_ingress_keypool_valkey_seconds_count{op="reserve"}`
	reserveBucket = `gca_ingress_keypool_valkey_seconds_bucket{op="reserve",le="`
)

// reserveMeter measures the key pool's reservation round trip to Valkey between two
// reads of the ingress's metrics.
type reserveMeter struct {
	url        string
	sum, count float64
	buckets    map[float64]float64 // upper bound (s) → cumulative count
}

// reserveStats are the reservations since the last mark, in µs.
type reserveStats struct {
	mean, p50, p99 float64
}

func newReserveMeter(ingressURL string) (*reserveMeter, error) {
	m := &reserveMeter{url: ingressURL + "/metrics"}
	return m, m.mark()
}

func (m *reserveMeter) read() (sum, count float64, buckets map[float64]float64, err error) {
	resp, err := http.Get(m.url)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	buckets = map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case series == reserveSum:
			sum = v
		case series == reserveCount:
			count = v
		case strings.HasPrefix(series, reserveBucket):
			le, err := strconv.ParseFloat(strings.TrimSuffix(series[len(reserveBucket):], `"}`), 64)
			if err == nil {
				buckets[le] = v
			}
		}
	}
	return sum, count, buckets, sc.Err()
}

func (m *reserveMeter) mark() error {
	sum, count, buckets, err := m.read()
	if err != nil {
		return err
	}
	m.sum, m.count, m.buckets = sum, count, buckets
	return nil
}

// since returns the reservations since the last mark, and marks. The percentiles are
// interpolated within the histogram's buckets, so they are as coarse as the buckets
// (25 µs to 100 ms, roughly doubling).
func (m *reserveMeter) since() (reserveStats, error) {
	s0, c0, b0 := m.sum, m.count, m.buckets
	if err := m.mark(); err != nil {
		return reserveStats{}, err
	}
	n := m.count - c0
	if n <= 0 {
		return reserveStats{}, fmt.Errorf("no reservation since the last mark")
	}
	var les []float64
	for le := range m.buckets {
		les = append(les, le)
	}
	slices.Sort(les)
	quantile := func(q float64) float64 {
		rank, lo, prev := q*n, 0.0, 0.0
		for _, le := range les {
			c := m.buckets[le] - b0[le]
			if c >= rank {
				if math.IsInf(le, 1) {
					return lo * 1e6 // beyond the last bound: report the bound
				}
				return (lo + (le-lo)*(rank-prev)/math.Max(c-prev, 1)) * 1e6
			}
			lo, prev = le, c
		}
		return nan()
	}
	return reserveStats{mean: (m.sum - s0) / n * 1e6, p50: quantile(0.5), p99: quantile(0.99)}, nil
}

// histMeanMs returns the mean of a histogram of seconds gathered from reg, in ms, over
// the series whose labels include label=value; NaN when it has no observations.
func histMeanMs(reg prometheus.Gatherer, name, label, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return nan()
	}
	var sum float64
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value && m.GetHistogram() != nil {
					sum += m.GetHistogram().GetSampleSum()
					count += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if count == 0 {
		return nan()
	}
	return sum / float64(count) * 1000
}

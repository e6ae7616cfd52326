//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// summary is the median and the spread of one figure over the repetitions.
type summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func summarize(vs []float64) summary {
	if len(vs) == 0 {
		return summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// target is a figure's goal from the issue. It is checked on the median of the value,
// or of the ratio to the baseline when OnRatio is set.
type target struct {
	Text    string  `json:"text"`
	Op      string  `json:"op"` // "<=", ">=" or "=="
	Value   float64 `json:"value"`
	OnRatio bool    `json:"on_ratio,omitempty"`
}

func atMost(v float64, text string) *target  { return &target{Text: text, Op: "<=", Value: v} }
func atLeast(v float64, text string) *target { return &target{Text: text, Op: ">=", Value: v} }
func exactly(v float64, text string) *target { return &target{Text: text, Op: "==", Value: v} }
func ratioAtLeast(v float64, text string) *target {
	return &target{Text: text, Op: ">=", Value: v, OnRatio: true}
}

func (t *target) met(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch t.Op {
	case "<=":
		return v <= t.Value
	case ">=":
		return v >= t.Value
	}
	return v == t.Value
}

// row is one line of the table; MarshalJSON writes it.
type row struct {
	Part   string
	Figure string
	Unit   string
	Values []float64 // one per repetition, in run order
	summary
	// Baseline is what the figure is compared with, measured in the same repetitions.
	BaselineName   string
	BaselineValues []float64
	Baseline       *summary
	// RatioName says what the ratio divides (default value / baseline); Ratios are
	// per repetition.
	RatioName string
	Ratios    []float64
	Ratio     *summary
	Target    *target
	Met       *bool
	// Note says why a figure is missing ("n/a (...)") or what to know when reading it.
	Note string
}

// fig starts a row from per-repetition values.
func fig(figure, unit string, values []float64) *row {
	return &row{Figure: figure, Unit: unit, Values: values, summary: summarize(values)}
}

// vs sets the baseline and the ratios value[i] / baseline[i].
func (r *row) vs(name string, baseline []float64) *row {
	ratios := make([]float64, len(baseline))
	for i, b := range baseline {
		ratios[i] = math.NaN()
		if i < len(r.Values) && b != 0 {
			ratios[i] = r.Values[i] / b
		}
	}
	return r.vsRatios(name, baseline, "", ratios)
}

// vsRatios sets the baseline and ratios computed by the caller.
func (r *row) vsRatios(name string, baseline []float64, ratioName string, ratios []float64) *row {
	b, q := summarize(baseline), summarize(ratios)
	r.BaselineName, r.BaselineValues, r.Baseline = name, baseline, &b
	r.RatioName, r.Ratios, r.Ratio = ratioName, ratios, &q
	return r
}

func (r *row) want(t *target) *row {
	r.Target = t
	return r
}

func (r *row) note(format string, args ...any) *row {
	r.Note = fmt.Sprintf(format, args...)
	return r
}

// judge sets Met from the target.
func (r *row) judge() {
	if r.Target == nil || len(r.Values) == 0 {
		return
	}
	v := r.Median
	if r.Target.OnRatio {
		v = math.NaN()
		if r.Ratio != nil {
			v = r.Ratio.Median
		}
	}
	met := r.Target.met(v)
	r.Met = &met
}

// report collects the rows of a run and writes them.
type report struct {
	mu       sync.Mutex
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"duration_s"`
	Mode     string            `json:"mode"`
	Reps     int               `json:"repetitions"`
	Machine  machine           `json:"machine"`
	Layout   layout            `json:"cpu_layout"`
	Sizes    sizes             `json:"sizes"`
	Rows     []*row            `json:"rows"`
	Errors   map[string]string `json:"errors,omitempty"`
	Profiles []string          `json:"profiles,omitempty"`
}

func (rep *report) add(part string, r *row) {
	r.Part = part
	r.judge()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	rep.Rows = append(rep.Rows, r)
}

func (rep *report) fail(part, msg string) {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if rep.Errors == nil {
		rep.Errors = map[string]string{}
	}
	rep.Errors[part] = msg
}

// fmtNum prints a number with precision fit for its size.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtSpread(s summary) string {
	return fmtNum(s.Min) + "–" + fmtNum(s.Max)
}

// writeTable prints the table: one line per figure.
func (rep *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "part\tfigure\tmedian\tmin–max\tbaseline (median)\tratio median (min–max)\ttarget\tmet")
	for _, r := range rep.Rows {
		med, spread := fmtNum(r.Median)+" "+r.Unit, fmtSpread(r.summary)
		if len(r.Values) == 0 {
			med, spread = "n/a", ""
		}
		base, ratio := "", ""
		if r.Baseline != nil {
			base = r.BaselineName + " " + fmtNum(r.Baseline.Median)
			ratio = fmt.Sprintf("%s× (%s)", fmtNum(r.Ratio.Median), fmtSpread(*r.Ratio))
			if r.RatioName != "" {
				ratio = r.RatioName + " " + ratio
			}
		}
		tgt, met := "", ""
		if r.Target != nil {
			tgt = r.Target.Text
			met = "MISSED"
			if r.Met != nil && *r.Met {
				met = "met"
			}
			if len(r.Values) == 0 {
				met = "n/a"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Part, r.Figure, med, spread, base, ratio, tgt, met)
	}
	_ = tw.Flush()
	var notes []string
	for _, r := range rep.Rows {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s %s: %s", r.Part, r.Figure, r.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
	for part, msg := range rep.Errors {
		fmt.Fprintf(w, "ERROR in part %s: %s\n", part, msg)
	}
}

func (rep *report) writeJSON(path string) error {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}

func nan() float64 { return math.NaN() }

// jnum is a float that encodes NaN and infinities as null, which JSON cannot hold.
type jnum float64

func (n jnum) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

func jnums(vs []float64) []jnum {
	out := make([]jnum, len(vs))
	for i, v := range vs {
		out[i] = jnum(v)
	}
	return out
}

type jsummary struct {
	Median jnum `json:"median"`
	Min    jnum `json:"min"`
	Max    jnum `json:"max"`
}

func jsum(s *summary) *jsummary {
	if s == nil {
		return nil
	}
	return &jsummary{jnum(s.Median), jnum(s.Min), jnum(s.Max)}
}

// MarshalJSON writes the row with NaN (a figure that could not be computed) as null.
func (r *row) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Part           string    `json:"part"`
		Figure         string    `json:"figure"`
		Unit           string    `json:"unit"`
		Values         []jnum    `json:"values"`
		Summary        *jsummary `json:"summary"`
		BaselineName   string    `json:"baseline_name,omitempty"`
		BaselineValues []jnum    `json:"baseline_values,omitempty"`
		Baseline       *jsummary `json:"baseline,omitempty"`
		RatioName      string    `json:"ratio_name,omitempty"`
		Ratios         []jnum    `json:"ratios,omitempty"`
		Ratio          *jsummary `json:"ratio,omitempty"`
		Target         *target   `json:"target,omitempty"`
		Met            *bool     `json:"met,omitempty"`
		Note           string    `json:"note,omitempty"`
	}{r.Part, r.Figure, r.Unit, jnums(r.Values), jsum(&r.summary), r.BaselineName, jnums(r.BaselineValues),
		jsum(r.Baseline), r.RatioName, jnums(r.Ratios), jsum(r.Ratio), r.Target, r.Met, r.Note})
}

// percentile returns the p-th percentile (0..100) of vs by nearest rank; vs is sorted
// in place.
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	i := int(math.Ceil(p/100*float64(len(vs)))) - 1
	return vs[min(max(i, 0), len(vs)-1)]
}

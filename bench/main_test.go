//go:build bench

package bench

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geminicodeapi/gca/internal/e2e"
)

var (
	outFlag     = flag.String("out", "results.json", "where to write the results as JSON (relative to bench/)")
	smokeFlag   = flag.Bool("smoke", false, "run every part with tiny sizes (CI): fails when a part errors, never on a missed target")
	partsFlag   = flag.String("parts", "latency,throughput,streams,quota,pipeline,replay", "parts to run, comma-separated")
	pinFlag     = flag.Bool("pin", true, "pin the load generator and the servers to separate CPUs (see the package doc)")
	profileFlag = flag.String("profile-dir", "", "where to write CPU profiles of the ingress (default $GCA_RUN_DIR/bench in a full run; none in smoke)")
)

// sizes are the knobs of a run.
type sizes struct {
	Reps int `json:"repetitions"`
	// Part 1: pairs per repetition after the warm-up pairs.
	LatencyWarm   int `json:"latency_warmup_pairs"`
	LatencyPairs  int `json:"latency_pairs"`
	StreamPairs   int `json:"stream_pairs"`
	StreamGapMs   int `json:"latency_stream_chunk_interval_ms"`
	LatencyChunks int `json:"latency_stream_chunks"`
	// Part 2.
	Conns        int           `json:"throughput_connections"`
	LoadWarm     time.Duration `json:"throughput_warmup_ns"`
	LoadDuration time.Duration `json:"throughput_duration_ns"`
	// Part 3.
	Streams        int           `json:"streams"`
	StreamChunks   int           `json:"stream_chunks"`
	StreamInterval time.Duration `json:"stream_chunk_interval_ns"`
	// Part 4: events produced per second, for how long.
	PipelineRate     int           `json:"pipeline_rate"`
	PipelineDuration time.Duration `json:"pipeline_duration_ns"`
	// PipelineCatchUp bounds the wait for the sinks after production ends.
	PipelineCatchUp time.Duration `json:"pipeline_catch_up_ns"`
	// Part 5: ReplayCap bounds each repetition; a replay still running then is timed
	// by its rate so far.
	ReplayEvents int           `json:"replay_events"`
	ReplayCap    time.Duration `json:"replay_cap_ns"`
	// Part 6: each of QuotaProjects projects allows QuotaLimit requests a day; the
	// burst sends QuotaBurst requests at once.
	QuotaProjects int `json:"quota_projects"`
	QuotaLimit    int `json:"quota_limit_per_project"`
	QuotaBurst    int `json:"quota_burst"`
}

var fullSizes = sizes{
	Reps: 3, LatencyWarm: 100, LatencyPairs: 1000, StreamPairs: 300, StreamGapMs: 2, LatencyChunks: 3,
	Conns: 64, LoadWarm: time.Second, LoadDuration: 5 * time.Second,
	// 60 chunks (3 s) rather than 20, so that the 2,000 streams are open at the same
	// time: setting up 2,000 streams takes the ingress longer than a 1 s stream lasts.
	Streams: 2000, StreamChunks: 60, StreamInterval: 50 * time.Millisecond,
	PipelineRate: 50_000, PipelineDuration: 10 * time.Second, PipelineCatchUp: 15 * time.Second,
	ReplayEvents: 1_000_000, ReplayCap: 45 * time.Second,
	QuotaProjects: 2, QuotaLimit: 25, QuotaBurst: 200,
}

var smokeSizes = sizes{
	Reps: 1, LatencyWarm: 20, LatencyPairs: 100, StreamPairs: 20, StreamGapMs: 2, LatencyChunks: 3,
	Conns: 8, LoadWarm: 200 * time.Millisecond, LoadDuration: time.Second,
	Streams: 50, StreamChunks: 5, StreamInterval: 20 * time.Millisecond,
	PipelineRate: 2000, PipelineDuration: time.Second, PipelineCatchUp: 20 * time.Second,
	ReplayEvents: 5000, ReplayCap: 30 * time.Second,
	QuotaProjects: 2, QuotaLimit: 5, QuotaBurst: 30,
}

// part is one benchmark: it adds rows to the report or fails its subtest.
type part struct {
	name, title string
	run         func(b *bench)
}

var parts = []part{
	{"latency", "1 latency", runLatency},
	{"throughput", "2 throughput", runThroughput},
	{"streams", "3 streams", runStreams},
	{"quota", "6 quota", runQuota},
	{"pipeline", "4 pipeline", runPipeline},
	{"replay", "5 replay", runReplay},
}

// bench is what a part works with.
type bench struct {
	t          *testing.T
	sz         sizes
	layout     layout
	bin        e2e.Binaries
	rep        *report
	part       string
	profileDir string
	// vkDB is the Valkey database of parts 4 and 5 (see claimValkeyDB).
	vkDB int
}

func (b *bench) add(r *row) {
	b.rep.add(b.part, r)
	b.t.Logf("%s: %s = %s %s (min–max %s)", b.part, r.Figure, fmtNum(r.Median), r.Unit, fmtSpread(r.summary))
}

// TestMain runs a helper role when this binary was started as one (see roles_test.go).
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// TestBench runs the selected parts in order and prints and writes the table, also
// when a part failed (its rows are missing and the error is listed).
func TestBench(t *testing.T) {
	start := time.Now()
	sz, mode := fullSizes, "full"
	if *smokeFlag {
		sz, mode = smokeSizes, "smoke"
	}
	lay := layout{Note: "unpinned (-pin=false)"}
	if *pinFlag {
		lay = newLayout()
	}
	rep := &report{Started: start.UTC(), Mode: mode, Reps: sz.Reps, Machine: readMachine(), Layout: lay, Sizes: sz}
	t.Logf("machine: %d CPUs (%s), %s; load average %s", rep.Machine.NProc, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.Machine.LoadAvg)
	t.Logf("CPU layout: %s", lay.Note)
	if n, err := raiseFileLimit(); err != nil {
		t.Logf("raise open-files limit: %v", err)
	} else {
		t.Logf("open-files limit %d", n)
	}
	bin, err := e2e.Build()
	if err != nil {
		t.Fatalf("build binaries: %v", err)
	}
	profileDir := *profileFlag
	if profileDir == "" && !*smokeFlag {
		run := os.Getenv("GCA_RUN_DIR")
		if run == "" {
			run = filepath.Join("..", ".run")
		}
		profileDir = filepath.Join(run, "bench")
	}
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			t.Fatalf("profile directory: %v", err)
		}
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*partsFlag, ",") {
		want[strings.TrimSpace(p)] = true
	}
	for _, p := range parts {
		if !want[p.name] {
			continue
		}
		partStart := time.Now()
		ok := t.Run(p.name, func(t *testing.T) {
			p.run(&bench{t: t, sz: sz, layout: lay, bin: bin, rep: rep, part: p.title, profileDir: profileDir})
		})
		if !ok {
			rep.fail(p.title, "failed; see the log above")
		}
		t.Logf("%s took %s", p.title, time.Since(partStart).Round(100*time.Millisecond))
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Machine.LoadAvgEnd = loadAvg()

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nGemini Code API benchmarks (%s run, %d repetitions, %.0f s) on %d × %s, %s, %s\n",
		mode, sz.Reps, rep.Seconds, rep.Machine.NProc, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.Machine.Date)
	fmt.Fprintf(&sb, "CPU layout: %s\n\n", lay.Note)
	rep.writeTable(&sb)
	fmt.Print(sb.String())
	if *outFlag != "" {
		if err := rep.writeJSON(*outFlag); err != nil {
			t.Errorf("%v", err)
		} else {
			t.Logf("results written to %s", *outFlag)
		}
	}
}

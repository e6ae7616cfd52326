//go:build integration

package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// benchEvents is the size of the replay benchmark: a day of a busy pool. Override with
// GCA_REPLAY_BENCH_EVENTS.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("GCA_REPLAY_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

var benchTopics struct {
	once   sync.Once
	topics Topics
	events int
}

// produceDay fills fresh topics (12 request partitions, as in production) with n
// events spread over the last 23 hours — a day of traffic whose health and day
// counters are all still live, so the Valkey replay writes every event — plus one
// key-state event per 100 requests.
func produceDay(b *testing.B, n int) Topics {
	benchTopics.once.Do(func() {
		t := Topics{
			Requests: testenv.Topic(b, "bench_requests", 12),
			KeyState: testenv.Topic(b, "bench_keystate", 6),
			Audit:    testenv.Topic(b, "bench_audit", 1),
		}
		const chunk = 50_000
		start := time.Now().Add(-23 * time.Hour)
		span := 23 * time.Hour / time.Duration((n+chunk-1)/chunk)
		began := time.Now()
		total := 0
		for i := 0; total < n; i++ {
			k := min(chunk, n-total)
			g := chtest.NewGen(uint64(i+1), start.Add(time.Duration(i)*span))
			msgs := make([]kafka.Message, 0, k+k/100)
			for _, e := range g.Requests(k, span) {
				msgs = append(msgs, chtest.Record(b, t.Requests, e, false))
			}
			for _, e := range g.KeyStates(k/100, span) {
				msgs = append(msgs, chtest.Record(b, t.KeyState, e, false))
			}
			chtest.Produce(b, testenv.KafkaBrokers(), msgs)
			total += len(msgs)
		}
		b.Logf("produced %d events in %s", total, time.Since(began).Round(time.Millisecond))
		benchTopics.topics, benchTopics.events = t, total
	})
	return benchTopics.topics
}

// BenchmarkReplay replays a day of a busy pool (1M events) from Kafka into a fresh
// Valkey prefix and, separately, into a fresh ClickHouse database, and reports events/s
// from Run's start (range resolution, migration of the fresh database and the final
// record included) to its end. Run with -benchtime=1x.
func BenchmarkReplay(b *testing.B) {
	n := benchEvents()
	topics := produceDay(b, n)
	vk, prefix := testenv.Valkey(b)
	// The one-script swap holds Valkey for seconds: a client that waits for it.
	slow, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{testenv.ValkeyAddr()}, DisableCache: true, ConnWriteTimeout: 10 * time.Minute})
	require.NoError(b, err)
	defer slow.Close()
	ch := testenv.OpenClickHouse(b, "default")
	live := testenv.UniqueName(b, "gca_bench")
	for _, target := range []Target{TargetValkey, TargetClickHouse} {
		b.Run(target.String(), func(b *testing.B) {
			for i := range b.N {
				id := fmt.Sprintf("b%d", i)
				o := Options{
					Brokers: testenv.KafkaBrokers(), Topics: topics, FromBeginning: true,
					Target: target, Into: IntoFresh, ID: id,
					Valkey: vk, LivePrefix: prefix,
					ClickHouse: ch, Schema: chddl.Options{Database: live, RetentionDays: 30, StatsRetentionDays: 730},
					Logger:   testLogger(),
					Progress: func(p Progress) { b.Log(p.String()) },
				}
				cpu0 := cpuTimes()
				st, err := Run(context.Background(), o)
				require.NoError(b, err)
				cpu := cpuTimes().since(cpu0)
				b.ReportMetric(st.EventsPerSecond, "events/s")
				b.ReportMetric(st.Duration.Seconds(), "s/replay")
				b.Logf("%s: %d events in %s (%s of it writing): %.0f events/s", target, st.Events, st.Duration.Round(time.Millisecond),
					st.WriteTime.Round(time.Millisecond), st.EventsPerSecond)
				for _, name := range cpuNames {
					if d, ok := cpu[name]; ok {
						us := float64(d.Microseconds()) / float64(st.Events)
						b.ReportMetric(us, "µs-cpu/event-"+name)
						b.Logf("  CPU %-10s %6.2f s, %5.2f µs per event", name, d.Seconds(), us)
					}
				}
				b.StopTimer()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				if target == TargetValkey {
					// How long the switch's script holds Valkey: rename every fresh key
					// (marks included) into the live prefix.
					start := time.Now()
					_, moved, err := swapValkey(ctx, slow, prefix, FreshPrefix(prefix, id))
					require.NoError(b, err)
					took := time.Since(start)
					b.ReportMetric(took.Seconds(), "s/swap")
					b.Logf("swap in one script: %d keys moved in %s (%.2f s per million keys)", moved, took.Round(time.Millisecond), took.Seconds()/float64(moved)*1e6)
					// And back, project by project (the offline switch).
					start = time.Now()
					_, moved, err = swapValkeyByProject(ctx, vk, FreshPrefix(prefix, id), prefix)
					require.NoError(b, err)
					took = time.Since(start)
					b.ReportMetric(took.Seconds(), "s/offline-swap")
					b.Logf("swap project by project: %d keys moved in %s, at most %d keys per script", moved, took.Round(time.Millisecond), swapChunk)
					_, err = deleteKeys(ctx, vk, prefix)
					require.NoError(b, err)
				}
				require.NoError(b, Drop(ctx, o))
				cancel()
				b.StartTimer()
			}
		})
	}
}

// cpuNames are the processes whose CPU time a replay costs: this one and the stack's.
var cpuNames = []string{"replay", "valkey", "clickhouse", "kafka"}

type cpuSample map[string]time.Duration

// cpuTimes reads the user+system CPU time of this process and of the local stack's
// servers (their pid files under .run/pids): on a machine shared with other work,
// CPU per event says more than events/s.
func cpuTimes() cpuSample {
	out := cpuSample{"replay": procCPU("self")}
	for _, name := range cpuNames[1:] {
		// GCA_REPLAY_BENCH_VALKEY_PID etc. point at a server run apart from the stack.
		pid := os.Getenv("GCA_REPLAY_BENCH_" + strings.ToUpper(name) + "_PID")
		if pid == "" {
			b, err := os.ReadFile(filepath.Join("..", "..", ".run", "pids", name+".pid"))
			if err != nil {
				continue
			}
			pid = strings.TrimSpace(string(b))
		}
		if d := procCPU(pid); d > 0 {
			out[name] = d
		}
	}
	return out
}

func (s cpuSample) since(before cpuSample) cpuSample {
	out := cpuSample{}
	for k, v := range s {
		if b, ok := before[k]; ok {
			out[k] = v - b
		}
	}
	return out
}

// procCPU is utime+stime of /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	k, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

package chsink

import (
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
)

// BenchmarkDecodeAndConvert measures the processor's CPU work per request event short of
// the network: decode and validation as the consumer loop does it (consume.Decode) and
// conversion into request_logs columns. ns/op and allocs/op are per event; cpu-ns/event
// is the CPU time, which unlike ns/op does not depend on what else the machine runs.
func BenchmarkDecodeAndConvert(b *testing.B) {
	g := chtest.NewGen(1, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	events := g.Requests(10000, time.Hour)
	msgs := make([]kafka.Message, len(events))
	var bytes int64
	for i, e := range events {
		msgs[i] = chtest.Record(b, "requests", e, false)
		bytes += int64(len(msgs[i].Value))
	}
	b.SetBytes(bytes / int64(len(msgs)))
	var rows requestRows
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(msgs)
		if j == 0 {
			rows.reset()
		}
		ev, err := consume.Decode(&msgs[j])
		if err != nil {
			b.Fatal(err)
		}
		rows.add(ev.(*schemas.RequestEvent))
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConvert is the row conversion alone.
func BenchmarkConvert(b *testing.B) {
	g := chtest.NewGen(1, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	events := g.Requests(10000, time.Hour)
	var rows requestRows
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(events)
		if j == 0 {
			rows.reset()
		}
		rows.add(events[j])
	}
}

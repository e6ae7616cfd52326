package consume

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

func TestBatchTracksOffsets(t *testing.T) {
	var b Batch
	for _, m := range []kafka.Message{
		{Topic: "a", Partition: 0, Offset: 10},
		{Topic: "a", Partition: 1, Offset: 5},
		{Topic: "a", Partition: 0, Offset: 11},
		{Topic: "b", Partition: 0, Offset: 7},
		// After a rebalance the partition is delivered again from its committed offset.
		{Topic: "a", Partition: 0, Offset: 9},
	} {
		b.track(m)
	}
	require.Equal(t, 5, b.Records())
	require.Equal(t, []PartitionRange{
		{Topic: "a", Partition: 0, First: 9, Last: 11},
		{Topic: "a", Partition: 1, First: 5, Last: 5},
		{Topic: "b", Partition: 0, First: 7, Last: 7},
	}, b.Offsets)
	var commits []int64
	for _, m := range b.last {
		commits = append(commits, m.Offset)
	}
	require.Equal(t, []int64{11, 5, 7}, commits, "the highest offset of each partition is committed")

	b.reset()
	require.Zero(t, b.Records())
	require.Empty(t, b.Offsets)
	require.Empty(t, b.last)
	require.Positive(t, cap(b.Offsets), "reset keeps the capacity")
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for attempt := 1; attempt <= 9; attempt++ {
		got = append(got, backoff(attempt, 100*time.Millisecond, 2*time.Second))
	}
	require.Equal(t, []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second,
	}, got)
}

func TestConfigValidate(t *testing.T) {
	good := Config{Brokers: []string{"127.0.0.1:9092"}, GroupID: "g", Topics: []string{"t"}, DeadLetterTopic: "dlq"}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		errs   []string
	}{
		{"defaults fill the rest", func(*Config) {}, nil},
		{"nothing", func(c *Config) { *c = Config{} }, []string{"no kafka brokers", "group id is empty", "no topics", "dead-letter topic is empty"}},
		{"dead letters into a consumed topic", func(c *Config) { c.DeadLetterTopic = "t" }, []string{"topic t is also the dead-letter topic"}},
		{"bad numbers", func(c *Config) {
			c.BatchSize, c.BatchInterval, c.RetryMin, c.RetryMax, c.DrainTimeout = -1, -time.Second, time.Minute, time.Second, -1
		}, []string{"batch size -1", "batch interval -1s", "retry backoff 1m0s..1s", "drain timeout -1ns"}},
		{"session below the broker minimum", func(c *Config) { c.SessionTimeout = time.Second }, []string{"below the broker's 6s minimum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.Validate()
			if tc.errs == nil {
				require.NoError(t, err)
				return
			}
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}

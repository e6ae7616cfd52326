package chtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Produce writes the records (each with its Topic set) and waits for every ack.
func Produce(t testing.TB, brokers []string, msgs []kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    2000,
		BatchTimeout: 5 * time.Millisecond,
	}
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < len(msgs); i += 10000 {
		chunk := msgs[i:min(i+10000, len(msgs))]
		for attempt := 0; ; attempt++ {
			err := w.WriteMessages(ctx, chunk...)
			if err == nil {
				break
			}
			// A topic created a moment ago can still be unknown to the writer's metadata.
			if attempt == 20 || !errors.Is(err, kafka.UnknownTopicOrPartition) {
				msg := err.Error()
				if len(msg) > 500 {
					msg = msg[:500] + "..."
				}
				t.Fatalf("produce %d records: %s", len(chunk), msg)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

func partitions(t testing.TB, c *kafka.Client, topics []string) map[string][]int {
	t.Helper()
	md, err := c.Metadata(context.Background(), &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		t.Fatalf("metadata of %v: %v", topics, err)
	}
	out := map[string][]int{}
	for _, tp := range md.Topics {
		for _, p := range tp.Partitions {
			out[tp.Name] = append(out[tp.Name], p.ID)
		}
	}
	return out
}

// ResetGroup commits offset 0 for every partition of the topics, as
// `kafka-consumer-groups --reset-offsets --to-earliest` does. The group must have no
// active member.
func ResetGroup(t testing.TB, brokers []string, group string, topics ...string) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	commits := map[string][]kafka.OffsetCommit{}
	for topic, ps := range partitions(t, c, topics) {
		for _, p := range ps {
			commits[topic] = append(commits[topic], kafka.OffsetCommit{Partition: p, Offset: 0})
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: commits})
		if err == nil {
			err = firstCommitError(resp)
		}
		if err == nil {
			return
		}
		// The group is still rebalancing away a member that just left.
		if time.Now().After(deadline) {
			t.Fatalf("reset offsets of group %s: %v", group, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstCommitError(resp *kafka.OffsetCommitResponse) error {
	for _, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return p.Error
			}
		}
	}
	return nil
}

// Uncommitted returns how many records of the topics the group has not committed.
func Uncommitted(t testing.TB, brokers []string, group string, topics ...string) int64 {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	parts := partitions(t, c, topics)
	reqs := map[string][]kafka.OffsetRequest{}
	for topic, ps := range parts {
		for _, p := range ps {
			reqs[topic] = append(reqs[topic], kafka.LastOffsetOf(p))
		}
	}
	ends, err := c.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: reqs})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	committed, err := c.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	at := map[string]map[int]int64{}
	for topic, ps := range committed.Topics {
		at[topic] = map[int]int64{}
		for _, p := range ps {
			at[topic][p.Partition] = max(p.CommittedOffset, 0)
		}
	}
	var lag int64
	for topic, ps := range ends.Topics {
		for _, p := range ps {
			lag += p.LastOffset - at[topic][p.Partition]
		}
	}
	return lag
}

// ReadAll reads every record of a topic from the start, waiting up to a few seconds
// for want records.
func ReadAll(t testing.TB, brokers []string, topic string, want int) []kafka.Message {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var out []kafka.Message
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range partitions(t, c, []string{topic})[topic] {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		func() {
			defer func() { _ = r.Close() }()
			for len(out) < want {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				m, err := r.ReadMessage(ctx)
				cancel()
				if err != nil {
					return // this partition has no more
				}
				out = append(out, m)
			}
		}()
		if time.Now().After(deadline) {
			break
		}
	}
	return out
}

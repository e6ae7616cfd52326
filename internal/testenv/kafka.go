package testenv

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topic creates a fresh topic with the given partitions and returns its name. It waits
// until every partition has a leader in the broker's metadata, because a kafka-go Writer
// that races topic creation sees "unknown topic" for seconds. The topic is deleted when
// the test ends.
func Topic(t testing.TB, base string, partitions int) string {
	t.Helper()
	name := UniqueName(t, base)
	CreateTopics(t, partitions, name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := &kafka.Client{Addr: kafka.TCP(KafkaBrokers()...), Timeout: 10 * time.Second}
		_, _ = c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
	return name
}

// CreateTopics creates topics (exact names) and waits for their leaders. Topics that
// already exist are fine.
func CreateTopics(t testing.TB, partitions int, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, KafkaBrokers(), partitions, names...); err != nil {
		t.Fatalf("create topics %v: %v", names, err)
	}
}

// EnsureTopics creates topics that do not exist yet and waits until the broker reports
// a leader for every partition.
func EnsureTopics(ctx context.Context, brokers []string, partitions int, names ...string) error {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, n := range names {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: n, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return err
	}
	for _, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return err
		}
	}
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
		if err == nil && allLed(md, names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(md *kafka.MetadataResponse, names []string) bool {
	found := map[string]bool{}
	for _, tp := range md.Topics {
		if tp.Error != nil || len(tp.Partitions) == 0 {
			return false
		}
		for _, p := range tp.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
		found[tp.Name] = true
	}
	for _, n := range names {
		if !found[n] {
			return false
		}
	}
	return true
}

// RequireKafka fails the test unless the broker accepts connections.
func RequireKafka(t testing.TB) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", KafkaBrokers()[0], 3*time.Second)
	if err != nil {
		t.Fatalf("kafka at %s unreachable (start the stack with `make stack-up`): %v", KafkaBrokers()[0], err)
	}
	_ = conn.Close()
}

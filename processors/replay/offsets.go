package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Offsets holds an offset per topic and partition.
type Offsets map[string]map[int]int64

// Set records the offset of a topic partition.
func (o Offsets) Set(topic string, partition int, offset int64) {
	if o[topic] == nil {
		o[topic] = map[int]int64{}
	}
	o[topic][partition] = offset
}

// Get returns the offset of a topic partition and whether there is one.
func (o Offsets) Get(topic string, partition int) (int64, bool) {
	v, ok := o[topic][partition]
	return v, ok
}

// Clone returns a deep copy.
func (o Offsets) Clone() Offsets {
	out := Offsets{}
	for t, ps := range o {
		out[t] = maps.Clone(ps)
	}
	return out
}

// Equal reports whether both hold the same offsets.
func (o Offsets) Equal(p Offsets) bool {
	return maps.EqualFunc(o, p, func(a, b map[int]int64) bool { return maps.Equal(a, b) })
}

// AtLeast reports whether every offset of want is reached in o, and names the first
// partition that is behind.
func (o Offsets) AtLeast(want Offsets) (bool, string) {
	for _, t := range slices.Sorted(maps.Keys(want)) {
		for _, p := range slices.Sorted(maps.Keys(want[t])) {
			if got, _ := o.Get(t, p); got < want[t][p] {
				return false, fmt.Sprintf("%s/%d at %d, want %d", t, p, got, want[t][p])
			}
		}
	}
	return true, ""
}

// String renders the offsets in the form ParseOffsets reads, one topic after another:
// "topic:0=12,1=40 topic2:0=3".
func (o Offsets) String() string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(o)) {
		var ps []string
		for _, p := range slices.Sorted(maps.Keys(o[t])) {
			ps = append(ps, strconv.Itoa(p)+"="+strconv.FormatInt(o[t][p], 10))
		}
		parts = append(parts, t+":"+strings.Join(ps, ","))
	}
	return strings.Join(parts, " ")
}

// ParseOffsets reads "topic:partition=offset,partition=offset". topic may be an alias
// that resolve maps to a topic name ("requests", "keystate", "audit"); the result is
// keyed by the resolved name.
func ParseOffsets(s string, resolve func(string) (string, error)) (Offsets, error) {
	topic, list, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || topic == "" || list == "" {
		return nil, fmt.Errorf("offsets %q: want topic:partition=offset,...", s)
	}
	name, err := resolve(topic)
	if err != nil {
		return nil, fmt.Errorf("offsets %q: %w", s, err)
	}
	out := Offsets{}
	for _, pair := range strings.Split(list, ",") {
		ps, os, ok := strings.Cut(strings.TrimSpace(pair), "=")
		p, perr := strconv.Atoi(ps)
		off, oerr := strconv.ParseInt(os, 10, 64)
		if !ok || perr != nil || oerr != nil || p < 0 || off < 0 {
			return nil, fmt.Errorf("offsets %q: %q is not partition=offset", s, pair)
		}
		if _, dup := out.Get(name, p); dup {
			return nil, fmt.Errorf("offsets %q: partition %d given twice", s, p)
		}
		out.Set(name, p, off)
	}
	return out, nil
}

// broker is what replay and check ask Kafka about topics and groups.
type broker struct {
	c *kafka.Client
}

func newBroker(brokers []string) broker {
	return broker{c: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}}
}

// partitions returns the partition ids of each topic.
func (b broker) partitions(ctx context.Context, topics ...string) (map[string][]int, error) {
	md, err := b.c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %v: %w", topics, err)
	}
	out := map[string][]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], p.ID)
		}
		slices.Sort(out[t.Name])
	}
	for _, t := range topics {
		if len(out[t]) == 0 {
			return nil, fmt.Errorf("topic %s has no partitions", t)
		}
	}
	return out, nil
}

// listOffsets asks for one offset per partition: the first kept (kafka.FirstOffset),
// the high watermark (kafka.LastOffset) or the first record written at or after a
// time (Unix ms). A time after the last record answers the high watermark.
func (b broker) listOffsets(ctx context.Context, parts map[string][]int, at int64) (Offsets, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for t, ps := range parts {
		for _, p := range ps {
			req.Topics[t] = append(req.Topics[t], kafka.OffsetRequest{Partition: p, Timestamp: at})
		}
	}
	resp, err := b.c.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := Offsets{}
	var missing []string
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			switch at {
			case kafka.FirstOffset:
				out.Set(t, p.Partition, p.FirstOffset)
			case kafka.LastOffset:
				out.Set(t, p.Partition, p.LastOffset)
			default:
				off := int64(-1)
				for o := range p.Offsets {
					off = o
				}
				if off < 0 {
					missing = append(missing, t+"/"+strconv.Itoa(p.Partition))
					continue
				}
				out.Set(t, p.Partition, off)
			}
		}
	}
	if len(missing) > 0 {
		// No record at or after the time: the range starts (or ends) at the end.
		hw, err := b.listOffsets(ctx, parts, kafka.LastOffset)
		if err != nil {
			return nil, err
		}
		for t, ps := range parts {
			for _, p := range ps {
				if _, ok := out.Get(t, p); !ok {
					v, _ := hw.Get(t, p)
					out.Set(t, p, v)
				}
			}
		}
	}
	return out, nil
}

// highWatermarks returns the offset after the last record of every partition.
func (b broker) highWatermarks(ctx context.Context, parts map[string][]int) (Offsets, error) {
	return b.listOffsets(ctx, parts, kafka.LastOffset)
}

// ErrNoCommits says a consumer group has committed nothing for the topics.
var ErrNoCommits = errors.New("consumer group has no committed offsets")

// committed returns the offsets a consumer group has committed: the first record it
// has not yet written. A partition the group never committed is at the first offset
// kept (the group starts there, kafka.FirstOffset). ErrNoCommits when the group has
// committed no partition at all.
func (b broker) committed(ctx context.Context, group string, parts map[string][]int) (Offsets, error) {
	resp, err := b.c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	first, err := b.listOffsets(ctx, parts, kafka.FirstOffset)
	if err != nil {
		return nil, err
	}
	out := Offsets{}
	found := false
	for t, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("committed offset of group %s on %s/%d: %w", group, t, p.Partition, p.Error)
			}
			if p.CommittedOffset >= 0 {
				found = true
				out.Set(t, p.Partition, p.CommittedOffset)
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%s on %v: %w", group, slices.Sorted(maps.Keys(parts)), ErrNoCommits)
	}
	for t, ps := range parts {
		for _, p := range ps {
			if _, ok := out.Get(t, p); !ok {
				v, _ := first.Get(t, p)
				out.Set(t, p, v)
			}
		}
	}
	return out, nil
}

// members returns how many members a consumer group has: 0 when no consumer of it runs.
func (b broker) members(ctx context.Context, group string) (int, error) {
	resp, err := b.c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return 0, fmt.Errorf("describe group %s: %w", group, err)
	}
	n := 0
	for _, g := range resp.Groups {
		if g.Error != nil {
			return 0, fmt.Errorf("describe group %s: %w", group, g.Error)
		}
		n += len(g.Members)
	}
	return n, nil
}

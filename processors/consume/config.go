package consume

import (
	"errors"
	"fmt"
	"time"
)

// Config configures one consumer loop.
type Config struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	// GroupID is the consumer group; instances with the same group share partitions.
	GroupID string
	// Topics are consumed together by the group.
	Topics []string
	// DeadLetterTopic receives records that cannot be decoded (schemas.TopicDeadLetter).
	DeadLetterTopic string
	// Consumer names this loop in the dead-letter header (e.g. "gca-clickhouse@host").
	// Default: GroupID.
	Consumer string
	// BatchSize cuts a batch when it holds this many records. Default 10000.
	BatchSize int
	// BatchInterval cuts a batch this long after its first record. Default 200ms.
	BatchInterval time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to write a batch.
	// Defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// DrainTimeout is how long the batch being written may still finish and be
	// committed when this member loses its partitions (a rebalance) or stops; past it
	// the batch is abandoned uncommitted. It must stay below SessionTimeout, which
	// bounds how long the group waits for this member to rejoin. Default 5s.
	DrainTimeout time.Duration
	// SessionTimeout is the group session: a member that stops heartbeating (a killed
	// process) holds its partitions this long; it is also the rebalance timeout.
	// Default 10s.
	SessionTimeout time.Duration
}

// Defaults for Config.
const (
	DefaultBatchSize      = 10000
	DefaultBatchInterval  = 200 * time.Millisecond
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 10 * time.Second
	DefaultDrainTimeout   = 5 * time.Second
	DefaultSessionTimeout = 10 * time.Second
)

func (c *Config) applyDefaults() {
	if c.Consumer == "" {
		c.Consumer = c.GroupID
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = DefaultBatchInterval
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
}

// Validate reports every problem with the configuration (zero values take defaults).
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("consumer: no kafka brokers"))
	}
	if c.GroupID == "" {
		errs = append(errs, errors.New("consumer: group id is empty"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, fmt.Errorf("consumer %s: no topics", c.GroupID))
	}
	if c.DeadLetterTopic == "" {
		errs = append(errs, fmt.Errorf("consumer %s: dead-letter topic is empty", c.GroupID))
	}
	for _, t := range c.Topics {
		if t == c.DeadLetterTopic && t != "" {
			errs = append(errs, fmt.Errorf("consumer %s: topic %s is also the dead-letter topic", c.GroupID, t))
		}
	}
	if c.BatchSize < 0 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("consumer %s: batch size %d not in 1..1000000", c.GroupID, c.BatchSize))
	}
	if c.BatchInterval < 0 {
		errs = append(errs, fmt.Errorf("consumer %s: batch interval %s is negative", c.GroupID, c.BatchInterval))
	}
	if c.RetryMin < 0 || c.RetryMax < 0 || (c.RetryMax > 0 && c.RetryMin > c.RetryMax) {
		errs = append(errs, fmt.Errorf("consumer %s: retry backoff %s..%s is not a range", c.GroupID, c.RetryMin, c.RetryMax))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("consumer %s: drain timeout %s is negative", c.GroupID, c.DrainTimeout))
	}
	if c.DrainTimeout > 0 && c.SessionTimeout > 0 && c.DrainTimeout >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("consumer %s: drain timeout %s must be shorter than the session timeout %s", c.GroupID, c.DrainTimeout, c.SessionTimeout))
	}
	if c.SessionTimeout != 0 && c.SessionTimeout < 6*time.Second {
		// Kafka's group.min.session.timeout.ms defaults to 6s; a shorter one is refused
		// at join time, which kafka-go only logs.
		errs = append(errs, fmt.Errorf("consumer %s: session timeout %s is below the broker's 6s minimum", c.GroupID, c.SessionTimeout))
	}
	return errors.Join(errs...)
}

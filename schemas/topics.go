package schemas

// Topic names. The version suffix changes only with an incompatible event change; a
// compatible change (a new optional field) bumps the event's "v" field instead.
const (
	// TopicRequests carries one RequestEvent per client request. Record key: the hash of
	// the key that served the request (the last attempt's key), so the events of one key
	// stay in order on one partition; requests that never reached a key use the client
	// token hash, or the event id.
	TopicRequests = "gca.requests.v1"
	// TopicKeyState carries KeyStateEvents: what an upstream answer said about a key or
	// project (quota exhausted, key invalid), revalidation results and operator actions.
	// Record key: the project, so every state change of a project and of its keys is
	// applied in order.
	TopicKeyState = "gca.keystate.v1"
	// TopicAudit carries AuditEvents: operator actions that are not key state
	// (consistency repairs, storage optimizations executed).
	TopicAudit = "gca.audit.v1"
	// TopicDeadLetter receives records a processor could not decode or that violate
	// their schema, unchanged, with the reason in the headers below.
	TopicDeadLetter = "gca.deadletter.v1"
)

// Headers set on dead-lettered records.
const (
	HeaderDLQReason    = "gca-dlq-reason"
	HeaderDLQTopic     = "gca-dlq-topic"
	HeaderDLQPartition = "gca-dlq-partition"
	HeaderDLQOffset    = "gca-dlq-offset"
	HeaderDLQConsumer  = "gca-dlq-consumer"
)

// Headers set by the producer on every record, so a consumer can route without decoding.
const (
	HeaderEventType    = "gca-type"
	HeaderEventVersion = "gca-v"
)

// HeaderMaybeDuplicate ("1") marks a record its producer may have written to Kafka
// before: a record shipped again after the ingress restarted (it may have been
// shipped before the crash), or resent after a failed produce request (the broker may
// have appended it anyway). Records without it were produced once, so a consumer
// needs to look for an earlier copy of them only where its own group may have
// delivered them before (processors/chsink).
const HeaderMaybeDuplicate = "gca-maybe-dup"

// TopicSpec is a topic the project creates.
type TopicSpec struct {
	Name       string
	Partitions int
	// RetentionHours bounds how far back state can be rebuilt by replay.
	RetentionHours int
}

// Topics returns the topics to create, with their default partition counts and
// retention. Requests get the most partitions: they carry almost all of the volume.
func Topics() []TopicSpec {
	return []TopicSpec{
		{Name: TopicRequests, Partitions: 12, RetentionHours: 7 * 24},
		{Name: TopicKeyState, Partitions: 6, RetentionHours: 30 * 24},
		{Name: TopicAudit, Partitions: 1, RetentionHours: 365 * 24},
		{Name: TopicDeadLetter, Partitions: 3, RetentionHours: 30 * 24},
	}
}

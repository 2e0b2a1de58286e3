//! Kafka sources as the admin requests carry them: what a client asks to consume, and the source
//! as the server holds it. The server validates (the table exists, at least one topic, a name
//! not taken); settings are librdkafka client properties, passed through unread.

/// Starts consuming Kafka topics into a table. Answered by [`crate::Reply::Source`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceSpec {
    /// The source's name, unique among sources.
    pub name: String,
    /// The table the records are written to; it must exist.
    pub table: String,
    /// The topics consumed; at least one.
    pub topics: Vec<String>,
    /// The Kafka bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Where records that cannot be applied are produced; `None` drops them.
    pub dead_letter_topic: Option<String>,
    /// Kafka client settings (key, value), in the order given, passed through to the consumer.
    pub settings: Vec<(String, String)>,
}

/// One topic of a source and the stream id the server gave it. A streamed version's origin
/// carries the stream id: `source_id = stream_id << 16 | kafka partition`, `seq` = the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTopic {
    /// The Kafka topic.
    pub topic: String,
    /// Its stream id.
    pub stream_id: u32,
}

/// A source as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source's name.
    pub name: String,
    /// The table it writes to.
    pub table: String,
    /// Its topics, each with its stream id.
    pub topics: Vec<SourceTopic>,
    /// The Kafka bootstrap servers.
    pub brokers: String,
    /// Where records that cannot be applied go; `None` drops them.
    pub dead_letter_topic: Option<String>,
    /// Kafka client settings as given, secrets included: a client must not print them as is.
    pub settings: Vec<(String, String)>,
    /// Removed: no longer consumed, listed so the stream ids of versions it wrote still resolve.
    pub retired: bool,
}

/// Stops consuming a source. Answered by [`crate::Reply::SourceRemoved`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveSource {
    /// The source.
    pub name: String,
}

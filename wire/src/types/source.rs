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

/// The origin `source_id` of a version streamed from Kafka partition `kafka_partition` of the
/// topic with stream id `stream_id`: `stream_id << 16 | kafka_partition`.
pub fn stream_source_id(stream_id: u16, kafka_partition: u16) -> u32 {
    (u32::from(stream_id) << 16) | u32::from(kafka_partition)
}

/// The stream id and Kafka partition a streamed version's origin `source_id` names: the inverse
/// of [`stream_source_id`].
pub fn stream_of_source_id(source_id: u32) -> (u16, u16) {
    let stream_id = u16::try_from(source_id >> 16).expect("the high 16 bits of a u32");
    let kafka_partition = u16::try_from(source_id & 0xffff).expect("masked to 16 bits");
    (stream_id, kafka_partition)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_source_id_names_its_stream_and_kafka_partition() {
        assert_eq!(stream_source_id(7, 2), 0x0007_0002);
        assert_eq!(stream_source_id(u16::MAX, u16::MAX), u32::MAX);
        for (stream_id, partition) in [(0, 0), (7, 2), (1, u16::MAX), (u16::MAX, 0)] {
            assert_eq!(stream_of_source_id(stream_source_id(stream_id, partition)), (stream_id, partition));
        }
    }
}

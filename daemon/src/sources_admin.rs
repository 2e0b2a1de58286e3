//! Kafka source administration: adding, listing and removing sources. Not wired yet: each
//! request is refused until the sources module lands.

use crate::convert::error;
use crate::shard::Shard;
use nacre_wire::{self as wire, ErrorCode, Reply};
use std::rc::Rc;

const NOT_WIRED: &str = "sources are not wired yet";

impl Shard {
    /// Adds a source (shard 0 only).
    #[expect(unused_variables, reason = "not wired yet")]
    pub(crate) async fn add_source(self: &Rc<Self>, spec: wire::SourceSpec) -> Result<Reply, wire::ErrorReply> {
        Err(error(ErrorCode::Internal, NOT_WIRED))
    }

    /// Every source, in name order.
    pub fn list_sources(&self) -> Reply {
        Reply::Error(error(ErrorCode::Internal, NOT_WIRED))
    }

    /// Removes a source (shard 0 only).
    #[expect(unused_variables, reason = "not wired yet")]
    pub(crate) async fn remove_source(self: &Rc<Self>, r: wire::RemoveSource) -> Result<Reply, wire::ErrorReply> {
        Err(error(ErrorCode::Internal, NOT_WIRED))
    }
}

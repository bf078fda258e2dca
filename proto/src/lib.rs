//! Generated Rust code of the `nova.streaming.v1` gRPC API (messages, clients and
//! servers) and its encoded file descriptor set for gRPC server reflection.
//!
//! The `.proto` sources live beside this crate in `nova/streaming/v1/`; their comments
//! are the API reference.

/// The `nova.streaming.v1` package.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]
    tonic::include_proto!("nova.streaming.v1");
}

/// Encoded `FileDescriptorSet` of every nova proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("nova_descriptor");

/// Resource name prefix of streams (`streams/{stream_id}`).
pub const STREAM_NAME_PREFIX: &str = "streams/";

/// Resource name prefix of assets (`assets/{asset_id}`).
pub const ASSET_NAME_PREFIX: &str = "assets/";

impl v1::JoinResult {
    /// The result of one join of a BatchJoinSessions call: its session, or the
    /// status JoinSession would have failed with.
    pub fn of(answer: Result<v1::JoinSessionResponse, tonic::Status>) -> Self {
        match answer {
            Ok(joined) => Self {
                joined: Some(joined),
                code: 0,
                message: String::new(),
            },
            Err(status) => Self {
                joined: None,
                code: status.code() as i32,
                message: status.message().to_owned(),
            },
        }
    }

    /// The answer JoinSession would have given for this join.
    pub fn into_answer(self) -> Result<v1::JoinSessionResponse, tonic::Status> {
        match self.joined {
            Some(joined) if self.code == 0 => Ok(joined),
            _ => Err(tonic::Status::new(
                tonic::Code::from(self.code),
                self.message,
            )),
        }
    }
}

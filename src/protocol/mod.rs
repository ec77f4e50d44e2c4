//! The wire: what clients send ([`request`], [`inline`]) and what Herald
//! answers ([`reply`], [`push`]).

pub mod inline;
pub mod push;
pub mod reply;
pub mod request;

pub use reply::Reply;
pub use request::{PipelineDecoder, Request, RequestDecoder};

//! The wire: what clients send ([`request`], [`inline`]) and what Herald
//! answers ([`reply`], [`push`]).

pub(crate) mod inline;
pub(crate) mod push;
pub(crate) mod reply;
pub(crate) mod request;

pub use reply::Reply;
pub(crate) use request::PipelineDecoder;
pub use request::{Request, RequestDecoder};

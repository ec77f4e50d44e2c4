//! One RESP connection: write commands, read whole frames.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::transport::{BoxStream, Connector};
use crate::value::Value;

pub(crate) struct Connection {
    stream: BoxStream,
    buf: BytesMut,
    resp3: bool,
}

/// A command as a client sends it: a RESP array of bulk strings. The one
/// request encoder of the workspace (the server's tests, the simulator and
/// the load generator use it too).
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    encode_command_into(args, &mut out);
    out
}

/// [`encode_command`], appended to `out` (a pipeline built in one buffer).
pub fn encode_command_into<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    let mut len = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(len.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(len.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Connection {
    /// Connects and says HELLO (protocol, credentials, name).
    pub async fn open(config: &Config, connector: &dyn Connector) -> Result<Connection> {
        let stream = tokio::time::timeout(config.connect_timeout, connector.connect(&config.addr))
            .await
            .map_err(|_| Error::Timeout)??;
        let mut conn = Connection { stream, buf: BytesMut::with_capacity(16 * 1024), resp3: config.resp3 };
        let proto = if config.resp3 { "3" } else { "2" };
        let mut hello: Vec<Vec<u8>> = vec![b"HELLO".to_vec(), proto.into()];
        if let Some(password) = &config.password {
            let user = config.username.clone().unwrap_or_else(|| "default".into());
            hello.extend([b"AUTH".to_vec(), user.into_bytes(), password.clone().into_bytes()]);
        }
        if let Some(name) = &config.client_name {
            hello.extend([b"SETNAME".to_vec(), name.clone().into_bytes()]);
        }
        let args: Vec<&[u8]> = hello.iter().map(Vec::as_slice).collect();
        conn.send(&args).await?;
        match tokio::time::timeout(config.response_timeout, conn.read()).await.map_err(|_| Error::Timeout)?? {
            Value::Error(e) => Err(Error::Server(e)),
            _ => Ok(conn),
        }
    }

    pub async fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        self.stream.write_all(&encode_command(args)).await?;
        Ok(())
    }

    /// The next whole frame. Cancel-safe: bytes read stay in the buffer.
    pub async fn read(&mut self) -> Result<Value> {
        loop {
            if let Some(v) = self.decode()? {
                return Ok(v);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    fn decode(&mut self) -> Result<Option<Value>> {
        let protocol = |e: redis_protocol::error::RedisProtocolError| Error::Protocol(e.to_string());
        if self.resp3 {
            match redis_protocol::resp3::decode::complete::decode_bytes_mut(&mut self.buf) {
                Ok(found) => Ok(found.map(|(frame, _, _)| Value::from(frame))),
                // A set holding maps (Redis' COMMAND INFO): read by structure.
                Err(e) if e.to_string().contains("hash key") => {
                    let found = crate::value::read_resp3(&self.buf).map_err(Error::Protocol)?;
                    Ok(found.map(|(value, used)| {
                        bytes::Buf::advance(&mut self.buf, used);
                        value
                    }))
                }
                Err(e) => Err(protocol(e)),
            }
        } else {
            let found = redis_protocol::resp2::decode::decode_bytes_mut(&mut self.buf).map_err(protocol)?;
            Ok(found.map(|(frame, _, _)| Value::from(frame)))
        }
    }
}

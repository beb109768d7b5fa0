//! The gRPC codec of dynamic messages: requests decoded as the RPC's input
//! type straight from its descriptor, answers encoded as they are.

use crate::errors::GatewayError;
use bytes::{BufMut, Bytes};
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

/// Encodes dynamic messages and decodes them as `decode`'s type: a server's
/// codec decodes requests, a client's (tools, tests) decodes responses.
#[derive(Clone)]
pub struct DynamicCodec {
    decode: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(decode: MessageDescriptor) -> Self {
        DynamicCodec { decode }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            descriptor: self.decode.clone(),
        }
    }
}

/// The codec of the gateway's own RPCs: requests decoded as the RPC's input
/// type, answers sent as a message or as bytes encoded before (a recorded
/// answer is replayed byte for byte, whatever the encoding of a message
/// would give today).
#[derive(Clone)]
pub struct GatewayCodec {
    decode: MessageDescriptor,
}

impl GatewayCodec {
    pub fn new(decode: MessageDescriptor) -> Self {
        GatewayCodec { decode }
    }
}

/// One answer of the gateway.
#[derive(Debug, Clone)]
pub enum Reply {
    Message(DynamicMessage),
    /// A message's encoding, sent as is.
    Encoded(Bytes),
}

impl Codec for GatewayCodec {
    type Encode = Reply;
    type Decode = DynamicMessage;
    type Encoder = ReplyEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ReplyEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            descriptor: self.decode.clone(),
        }
    }
}

pub struct ReplyEncoder;

impl Encoder for ReplyEncoder {
    type Item = Reply;
    type Error = Status;

    fn encode(&mut self, item: Reply, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Reply::Message(message) => DynamicEncoder.encode(message, dst),
            Reply::Encoded(bytes) => {
                dst.put_slice(&bytes);
                Ok(())
            }
        }
    }
}

pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // EncodeBuf grows as it is written: there is no capacity to run out of.
        super::wire::encode_to(&item, dst);
        Ok(())
    }
}

pub struct DynamicDecoder {
    descriptor: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.descriptor.clone(), src)
            .map(Some)
            .map_err(|error| {
                GatewayError::RequestUnreadable {
                    detail: format!(
                        "not valid protobuf of {}: {error}",
                        self.descriptor.full_name()
                    ),
                }
                .to_status()
            })
    }
}

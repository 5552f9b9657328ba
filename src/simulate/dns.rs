//! DNS side of the simulator: A (or AAAA) records for registered aliases and
//! names under wildcard aliases, NXDOMAIN for everything else.

use std::net::IpAddr;
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

use super::http::Shared;

const TTL_SECS: u32 = 5;

pub struct DnsHandler {
    pub sim: Shared,
    pub target: IpAddr,
    /// The proxy's address, answered for proxied aliases.
    pub proxy: Option<IpAddr>,
}

impl DnsHandler {
    /// The answer for one question: records, or None for NXDOMAIN.
    fn answer(&self, name: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        let (known, proxied) = {
            let sim = self.sim.lock().unwrap();
            let name = name.to_ascii();
            (sim.dns_alias(&name).is_some(), sim.is_proxied(&name))
        };
        if !known {
            return None;
        }
        let target = match self.proxy {
            Some(proxy) if proxied => proxy,
            _ => self.target,
        };
        let rdata = match (qtype, target) {
            (RecordType::A | RecordType::ANY, IpAddr::V4(ip)) => Some(RData::A(A(ip))),
            (RecordType::AAAA | RecordType::ANY, IpAddr::V6(ip)) => Some(RData::AAAA(AAAA(ip))),
            _ => None, // NOERROR with no records: the name exists, the type does not
        };
        Some(
            rdata
                .map(|rdata| Record::from_rdata(name.clone(), TTL_SECS, rdata))
                .into_iter()
                .collect(),
        )
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let Some(query) = request.queries.queries().first() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut response_handle, response).await;
        };
        let name = Name::from(query.name().clone());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        match self.answer(&name, query.query_type()) {
            Some(records) => {
                let response = builder.build(metadata, records.iter(), [], [], []);
                send(&mut response_handle, response).await
            }
            None => {
                let response = builder.error_msg(&request.metadata, ResponseCode::NXDomain);
                send(&mut response_handle, response).await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "cannot send DNS response");
            let mut metadata = Metadata::new(0, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            hickory_server::proto::op::Header {
                metadata,
                counts: Default::default(),
            }
            .into()
        }
    }
}

/// Serves DNS on UDP and TCP at the same address until the returned server is dropped.
pub fn serve(
    handler: DnsHandler,
    udp: UdpSocket,
    tcp: TcpListener,
) -> hickory_server::Server<DnsHandler> {
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 4096);
    server
}

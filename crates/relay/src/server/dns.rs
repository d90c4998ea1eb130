//! The relay's authoritative DNS server for its domain (hickory-server,
//! UDP and TCP), answering from the relay's live state:
//!
//! | name | answer |
//! |---|---|
//! | `<domain>` | SOA, NS `ns.<domain>`, A/AAAA → public address |
//! | `ns.<domain>` | A/AAAA → public address |
//! | `<hub-id>.<domain>`, `*.<hub-id>.<domain>` | A/AAAA → public address |
//! | `lan.<hub-id>.<domain>` | A/AAAA → the hub's reported LAN address |
//! | `_acme-challenge.<hub-id>.<domain>` | TXT as set by that hub |
//!
//! Invariants:
//! * Names of hubs that are not enrolled (or were revoked) are NXDOMAIN;
//!   an existing name without data of the asked type is NOERROR with the
//!   SOA in the authority section (RFC 2308).
//! * Names outside the domain are REFUSED: this is not a resolver.
//! * TXT data comes only from the hub's own authenticated requests
//!   (control.rs); nothing here writes state.
//! * TTLs are short ([`TTL`]) because TXT and LAN data change.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_server::authority::MessageResponseBuilder;
use hickory_server::proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, NS, SOA, TXT};
use hickory_server::proto::rr::{Name as DnsName, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use super::State;
use crate::names::{classify, Name};

/// TTL of every answer, in seconds.
pub const TTL: u32 = 60;

pub(crate) struct Handler {
    state: Arc<State>,
    apex: DnsName,
    soa: Record,
}

impl Handler {
    pub fn new(state: Arc<State>) -> Handler {
        let apex =
            DnsName::from_str(&format!("{}.", state.domain)).unwrap_or_else(|_| DnsName::root());
        let ns =
            DnsName::from_str(&format!("ns.{}.", state.domain)).unwrap_or_else(|_| DnsName::root());
        let admin = DnsName::from_str(&format!("hostmaster.{}.", state.domain))
            .unwrap_or_else(|_| DnsName::root());
        let serial = jiff::Timestamp::now().as_second() as u32;
        let soa = Record::from_rdata(
            apex.clone(),
            TTL,
            RData::SOA(SOA::new(ns, admin, serial, 3600, 600, 86_400, TTL)),
        );
        Handler { state, apex, soa }
    }

    fn ip_record(&self, name: &DnsName, qtype: RecordType, ip: IpAddr) -> Option<Record> {
        match (qtype, ip) {
            (RecordType::A, IpAddr::V4(v4)) => {
                Some(Record::from_rdata(name.clone(), TTL, RData::A(A(v4))))
            }
            (RecordType::AAAA, IpAddr::V6(v6)) => {
                Some(Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(v6))))
            }
            _ => None,
        }
    }

    /// `Err(code)` for NXDOMAIN/REFUSED, else the answer records (empty:
    /// NODATA).
    fn answer(&self, qname: &DnsName, qtype: RecordType) -> Result<Vec<Record>, ResponseCode> {
        let text = qname.to_ascii();
        let st = &self.state;
        let Some(kind) = classify(&text, &st.domain) else {
            return Err(ResponseCode::Refused);
        };
        let mut out = Vec::new();
        match kind {
            Name::Apex => match qtype {
                RecordType::SOA => out.push(self.soa.clone()),
                RecordType::NS => {
                    let ns = DnsName::from_str(&format!("ns.{}.", st.domain))
                        .map_err(|_| ResponseCode::ServFail)?;
                    out.push(Record::from_rdata(
                        self.apex.clone(),
                        TTL,
                        RData::NS(NS(ns)),
                    ));
                }
                _ => out.extend(self.ip_record(qname, qtype, st.public_ip)),
            },
            Name::Unknown
                if text
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(&format!("ns.{}", st.domain)) =>
            {
                out.extend(self.ip_record(qname, qtype, st.public_ip))
            }
            Name::Unknown => return Err(ResponseCode::NXDomain),
            Name::Hub(id) => {
                if !st.hub_active(&id) {
                    return Err(ResponseCode::NXDomain);
                }
                out.extend(self.ip_record(qname, qtype, st.public_ip));
            }
            Name::Lan(id) => {
                if !st.hub_active(&id) {
                    return Err(ResponseCode::NXDomain);
                }
                let lan = st
                    .dns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .and_then(|d| d.lan);
                if let Some(ip) = lan {
                    out.extend(self.ip_record(qname, qtype, ip));
                }
            }
            Name::AcmeChallenge(id) => {
                if !st.hub_active(&id) {
                    return Err(ResponseCode::NXDomain);
                }
                if qtype == RecordType::TXT {
                    let values = st
                        .dns
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .map(|d| d.txt.clone())
                        .unwrap_or_default();
                    for v in values {
                        out.push(Record::from_rdata(
                            qname.clone(),
                            TTL,
                            RData::TXT(TXT::new(vec![v])),
                        ));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut header = Header::response_from_request(request.header());
        header.set_authoritative(true);
        let send_err = |code: ResponseCode| {
            let mut h = header;
            h.set_response_code(code);
            h.set_authoritative(false);
            h
        };
        if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
            let h = send_err(ResponseCode::NotImp);
            return send(&mut response_handle, builder.build_no_records(h), h).await;
        }
        let info = match request.request_info() {
            Ok(i) => i,
            Err(_) => {
                let h = send_err(ResponseCode::FormErr);
                return send(&mut response_handle, builder.build_no_records(h), h).await;
            }
        };
        let qname: DnsName = info.query.name().into();
        let qtype = info.query.query_type();
        match self.answer(&qname, qtype) {
            Ok(answers) => {
                let soa: Vec<&Record> = if answers.is_empty() {
                    vec![&self.soa]
                } else {
                    vec![]
                };
                let msg = builder.build(header, answers.iter(), [], soa, []);
                send(&mut response_handle, msg, header).await
            }
            Err(ResponseCode::Refused) => {
                let h = send_err(ResponseCode::Refused);
                send(&mut response_handle, builder.build_no_records(h), h).await
            }
            Err(code) => {
                let mut h = header;
                h.set_response_code(code);
                let msg = builder.build(h, [], [], [&self.soa], []);
                send(&mut response_handle, msg, h).await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    msg: hickory_server::authority::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    header: Header,
) -> ResponseInfo {
    match handle.send_response(msg).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!("cannot send a DNS answer: {e}");
            let mut h = header;
            h.set_response_code(ResponseCode::ServFail);
            h.into()
        }
    }
}

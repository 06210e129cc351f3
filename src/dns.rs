//! DNS on the wire (RFC 1035), only what looking up a target's addresses
//! needs: a query for the A or AAAA records of a name, and the answer to
//! it, checked against the query and boiled down to its addresses. Pure
//! code: bytes in, bytes or addresses out; the exchange over UDP with
//! `--resolver` is `targets::nameserver`'s.
//!
//! An answer is refused whole when it is not the answer to this query (a
//! response, the same id, the same one question), when the server cut it
//! short (TC: there is no TCP fallback, and part of a set is not the set),
//! when it says the lookup failed (RCODE), and when anything in it runs
//! past its end or a compressed name loops. Of its records only the A or
//! AAAA asked for are kept, for the name asked or a name it is a CNAME of.

#![forbid(unsafe_code)]

use std::fmt;

/// The records a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
}

impl Kind {
    /// The record type's code.
    fn code(self) -> u16 {
        match self {
            Kind::A => TYPE_A,
            Kind::Aaaa => TYPE_AAAA,
        }
    }
}

/// An address found in an answer (the IO side makes an `IpAddr` of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Why a name could not be asked for, or an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// The name cannot be asked for: empty, an empty label, a label over 63
    /// bytes or over 255 in all, or a byte that is not visible ASCII.
    BadName,
    /// Shorter than a header, or a count or length in it points past its end.
    Short,
    /// Not the answer to this query: not a response, another id, another
    /// question.
    NotOurs,
    /// The server cut the answer short (TC).
    Truncated,
    /// The name does not exist (NXDOMAIN).
    NoSuchName,
    /// The server could not answer (SERVFAIL, REFUSED, ...): its RCODE.
    Failed(u8),
    /// A compressed name that loops, points forward or is too long, an
    /// unknown label type, or an address record of the wrong length.
    Malformed,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::BadName => f.write_str("not a name DNS can ask for"),
            DnsError::Short => f.write_str("answer shorter than it says"),
            DnsError::NotOurs => f.write_str("answer to another question"),
            DnsError::Truncated => f.write_str("answer truncated (TC)"),
            DnsError::NoSuchName => f.write_str("no such name (NXDOMAIN)"),
            DnsError::Failed(rcode) => match rcode_name(*rcode) {
                Some(name) => write!(f, "server answered {name}"),
                None => write!(f, "server answered RCODE {rcode}"),
            },
            DnsError::Malformed => f.write_str("malformed answer"),
        }
    }
}

/// The usual name of a failure's RCODE.
fn rcode_name(rcode: u8) -> Option<&'static str> {
    Some(match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return None,
    })
}

/// The largest answer a query asks for (EDNS0's UDP payload size, as the
/// DNS Flag Day 2020 advised): room for about 70 A records.
pub const MAX_ANSWER: usize = 1232;

const HEADER: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;

/// Header flags.
const QR: u16 = 0x8000;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;

/// Longest name in its wire form (labels and their lengths).
const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;
/// CNAMEs followed from the name asked.
const MAX_CHAIN: usize = 8;

/// A query (id `id`, recursion desired) for the `kind` records of `name`,
/// with an EDNS0 record offering [`MAX_ANSWER`] bytes.
pub fn query(id: u16, name: &str, kind: Kind) -> Result<Vec<u8>, DnsError> {
    let qname = encode_name(name)?;
    let mut q = Vec::with_capacity(HEADER + qname.len() + 4 + 11);
    for word in [id, RD, 1, 0, 0, 1] {
        q.extend_from_slice(&word.to_be_bytes());
    }
    q.extend_from_slice(&qname);
    q.extend_from_slice(&kind.code().to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: the root name, its type, the payload size in its class, a zero
    // TTL (extended RCODE, version, flags) and no data.
    q.push(0);
    q.extend_from_slice(&TYPE_OPT.to_be_bytes());
    q.extend_from_slice(&(MAX_ANSWER as u16).to_be_bytes());
    q.extend_from_slice(&[0; 6]);
    Ok(q)
}

/// The addresses in `msg`, the answer to the query `id` for the `kind`
/// records of `name`, in the order given (duplicates dropped). An answer
/// with none (the name has no such record) is an empty list.
pub fn answer(msg: &[u8], id: u16, name: &str, kind: Kind) -> Result<Vec<Address>, DnsError> {
    let asked = encode_name(name)?;
    if msg.len() < HEADER {
        return Err(DnsError::Short);
    }
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let flags = word(2);
    let opcode = (flags >> 11) & 0xf;
    if word(0) != id || flags & QR == 0 || opcode != 0 {
        return Err(DnsError::NotOurs);
    }
    if flags & TC != 0 {
        return Err(DnsError::Truncated);
    }
    match (flags & 0xf) as u8 {
        0 => {}
        3 => return Err(DnsError::NoSuchName),
        rcode => return Err(DnsError::Failed(rcode)),
    }
    if word(4) != 1 {
        return Err(DnsError::NotOurs);
    }
    let (qname, at) = read_name(msg, HEADER)?;
    let (qtype, qclass) = (read_u16(msg, at)?, read_u16(msg, at + 2)?);
    if qname != asked || qtype != kind.code() || qclass != CLASS_IN {
        return Err(DnsError::NotOurs);
    }
    let records = read_records(msg, at + 4, word(6))?;
    let owners = chain(msg, &records, asked)?;
    let mut found = Vec::new();
    for r in records.iter().filter(|r| r.class == CLASS_IN) {
        if r.rtype != kind.code() || !owners.contains(&r.owner) {
            continue;
        }
        let data = &msg[r.data.0..r.data.1];
        let address = match kind {
            Kind::A => Address::V4(data.try_into().map_err(|_| DnsError::Malformed)?),
            Kind::Aaaa => Address::V6(data.try_into().map_err(|_| DnsError::Malformed)?),
        };
        if !found.contains(&address) {
            found.push(address);
        }
    }
    Ok(found)
}

/// One resource record of the answer section: its owner name (wire form,
/// lower case), type, class and where its data lies in the message.
struct Record {
    owner: Vec<u8>,
    rtype: u16,
    class: u16,
    data: (usize, usize),
}

/// The `count` records from `at`.
fn read_records(msg: &[u8], mut at: usize, count: u16) -> Result<Vec<Record>, DnsError> {
    let mut records = Vec::with_capacity(usize::from(count).min(64));
    for _ in 0..count {
        let (owner, after) = read_name(msg, at)?;
        let rtype = read_u16(msg, after)?;
        let class = read_u16(msg, after + 2)?;
        // after + 4: the TTL, which a refresh every interval has no use for.
        let len = usize::from(read_u16(msg, after + 8)?);
        let start = after + 10;
        let end = start + len;
        if end > msg.len() {
            return Err(DnsError::Short);
        }
        records.push(Record {
            owner,
            rtype,
            class,
            data: (start, end),
        });
        at = end;
    }
    Ok(records)
}

/// The name asked and the names it is a CNAME of, in turn.
fn chain(msg: &[u8], records: &[Record], asked: Vec<u8>) -> Result<Vec<Vec<u8>>, DnsError> {
    let mut owners = vec![asked];
    while owners.len() <= MAX_CHAIN {
        let last = owners.last().expect("never empty");
        let Some(cname) = records
            .iter()
            .find(|r| r.rtype == TYPE_CNAME && r.class == CLASS_IN && &r.owner == last)
        else {
            break;
        };
        let (target, end) = read_name(msg, cname.data.0)?;
        if end > cname.data.1 {
            return Err(DnsError::Malformed);
        }
        if owners.contains(&target) {
            break;
        }
        owners.push(target);
    }
    Ok(owners)
}

/// A big-endian u16 at `at`.
fn read_u16(msg: &[u8], at: usize) -> Result<u16, DnsError> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError::Short),
    }
}

/// The name at `at`, compression pointers followed, in wire form and lower
/// case; and where what follows it in place begins.
///
/// Each pointer must point before where the labels it ends began: a
/// pointer can then never come back to itself, so that a loop is refused
/// rather than followed, and the names a server writes (which point to
/// earlier ones) still read.
fn read_name(msg: &[u8], at: usize) -> Result<(Vec<u8>, usize), DnsError> {
    let mut name = Vec::new();
    let mut pos = at;
    let mut floor = at;
    let mut after = None;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Short)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                name.push(0);
                return Ok((name, after.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Short)?;
                name.push(len);
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                if name.len() + 1 > MAX_NAME {
                    return Err(DnsError::Malformed);
                }
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Short)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                if target >= floor {
                    return Err(DnsError::Malformed);
                }
                after.get_or_insert(pos + 2);
                pos = target;
                floor = target;
            }
            // 0x40 and 0x80: label types never defined (or gone).
            _ => return Err(DnsError::Malformed),
        }
    }
}

/// `name` (an optional final dot) in wire form, lower case.
fn encode_name(name: &str) -> Result<Vec<u8>, DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(DnsError::BadName);
    }
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        let ok = |b: &u8| b.is_ascii_graphic();
        if label.is_empty() || label.len() > MAX_LABEL || !label.bytes().all(|b| ok(&b)) {
            return Err(DnsError::BadName);
        }
        wire.push(label.len() as u8);
        wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    wire.push(0);
    if wire.len() > MAX_NAME {
        return Err(DnsError::BadName);
    }
    Ok(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u16 = 0xbeef;

    /// `app.test` in wire form.
    const APP_TEST: &[u8] = b"\x03app\x04test\x00";

    /// The header of an answer: id, flags, and the four counts.
    fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        [id, flags, qd, an, 0, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    }

    /// A question for `kind` records of `app.test`.
    fn question(kind: Kind) -> Vec<u8> {
        let mut q = APP_TEST.to_vec();
        q.extend_from_slice(&kind.code().to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    /// A record: `owner` (wire form, or a pointer), type, class IN, a TTL
    /// of 60, and `data`.
    fn record(owner: &[u8], rtype: u16, data: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&60u32.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
        r
    }

    /// The pointer to the question's name (offset 12).
    const TO_QNAME: &[u8] = &[0xc0, 0x0c];

    /// An answer to `app.test A` with these records.
    fn answer_with(records: &[Vec<u8>]) -> Vec<u8> {
        let mut m = header(ID, QR | RD | 0x0080, 1, records.len() as u16);
        m.extend(question(Kind::A));
        for r in records {
            m.extend_from_slice(r);
        }
        m
    }

    fn a(owner: &[u8], ip: [u8; 4]) -> Vec<u8> {
        record(owner, TYPE_A, &ip)
    }

    fn parse(msg: &[u8]) -> Result<Vec<Address>, DnsError> {
        answer(msg, ID, "app.test", Kind::A)
    }

    #[test]
    fn a_query_is_the_bytes_rfc_1035_says() {
        let q = query(0x1234, "App.Test.", Kind::A).unwrap();
        let want: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01\
            \x03app\x04test\x00\x00\x01\x00\x01\
            \x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00";
        assert_eq!(q, want);
        let q = query(1, "app.test", Kind::Aaaa).unwrap();
        assert_eq!(&q[12 + APP_TEST.len()..][..4], &[0, 28, 0, 1]);
    }

    #[test]
    fn names_that_cannot_be_asked_for_are_refused() {
        let long_label = format!("{}.test", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            "é.test",
            "a b.test",
            &long_label,
            &long_name,
        ] {
            assert_eq!(query(1, bad, Kind::A), Err(DnsError::BadName), "{bad:?}");
        }
        assert!(query(1, &"a".repeat(63), Kind::A).is_ok());
    }

    #[test]
    fn reads_the_addresses_of_an_answer_with_compressed_names() {
        let msg = answer_with(&[
            a(TO_QNAME, [10, 0, 0, 5]),
            a(TO_QNAME, [10, 0, 0, 6]),
            a(APP_TEST, [10, 0, 0, 5]),
        ]);
        assert_eq!(
            parse(&msg),
            Ok(vec![Address::V4([10, 0, 0, 5]), Address::V4([10, 0, 0, 6])])
        );
    }

    #[test]
    fn names_compare_without_case() {
        let msg = answer_with(&[a(b"\x03APP\x04tEsT\x00", [10, 0, 0, 1])]);
        assert_eq!(
            answer(&msg, ID, "App.TEST", Kind::A),
            Ok(vec![Address::V4([10, 0, 0, 1])])
        );
    }

    #[test]
    fn reads_aaaa_records_and_only_the_kind_asked() {
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut msg = header(ID, QR, 1, 2);
        msg.extend(question(Kind::Aaaa));
        msg.extend(a(TO_QNAME, [10, 0, 0, 1]));
        msg.extend(record(TO_QNAME, TYPE_AAAA, &v6));
        assert_eq!(
            answer(&msg, ID, "app.test", Kind::Aaaa),
            Ok(vec![Address::V6(v6)])
        );
        // The same answer is not one to an A query.
        assert_eq!(parse(&msg), Err(DnsError::NotOurs));
    }

    #[test]
    fn follows_cnames_and_ignores_records_of_other_names() {
        // app.test CNAME pod.svc; pod.svc A 10.0.0.9; other.test A 10.0.0.66.
        let cname = record(TO_QNAME, TYPE_CNAME, b"\x03pod\x03svc\x00");
        let msg = answer_with(&[
            cname.clone(),
            a(b"\x03pod\x03svc\x00", [10, 0, 0, 9]),
            a(b"\x05other\x04test\x00", [10, 0, 0, 66]),
        ]);
        assert_eq!(parse(&msg), Ok(vec![Address::V4([10, 0, 0, 9])]));
        // The CNAME's target written as a pointer into the question.
        let to_test = [0xc0, 0x10]; // "test" at 12 + 4.
        let msg = answer_with(&[
            record(
                TO_QNAME,
                TYPE_CNAME,
                &[b"\x01x".as_slice(), &to_test].concat(),
            ),
            a(b"\x01x\x04test\x00", [10, 0, 0, 7]),
        ]);
        assert_eq!(parse(&msg), Ok(vec![Address::V4([10, 0, 0, 7])]));
    }

    #[test]
    fn a_name_without_records_is_an_empty_list() {
        assert_eq!(parse(&answer_with(&[])), Ok(vec![]));
    }

    #[test]
    fn failures_truncation_and_strangers_are_refused() {
        let good = answer_with(&[a(TO_QNAME, [10, 0, 0, 1])]);
        let with_flags = |flags: u16| {
            let mut m = good.clone();
            m[2..4].copy_from_slice(&flags.to_be_bytes());
            m
        };
        assert_eq!(parse(&with_flags(QR | TC)), Err(DnsError::Truncated));
        assert_eq!(parse(&with_flags(QR | 2)), Err(DnsError::Failed(2)));
        assert_eq!(parse(&with_flags(QR | 5)), Err(DnsError::Failed(5)));
        assert_eq!(parse(&with_flags(QR | 3)), Err(DnsError::NoSuchName));
        assert_eq!(parse(&with_flags(RD)), Err(DnsError::NotOurs), "a query");
        assert_eq!(
            parse(&with_flags(QR | 1 << 11)),
            Err(DnsError::NotOurs),
            "IQUERY"
        );
        assert_eq!(
            answer(&good, ID + 1, "app.test", Kind::A),
            Err(DnsError::NotOurs)
        );
        assert_eq!(
            answer(&good, ID, "app.other", Kind::A),
            Err(DnsError::NotOurs)
        );
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        assert_eq!(parse(&two_questions), Err(DnsError::NotOurs));
        assert_eq!(DnsError::Failed(2).to_string(), "server answered SERVFAIL");
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        // A record whose owner points to itself.
        let at = (HEADER + question(Kind::A).len()) as u8;
        let msg = answer_with(&[a(&[0xc0, at], [10, 0, 0, 1])]);
        assert_eq!(parse(&msg), Err(DnsError::Malformed));
        // A label, then a pointer back to that label: a loop through it.
        let msg = answer_with(&[a(&[1, b'x', 0xc0, at], [10, 0, 0, 1])]);
        assert_eq!(parse(&msg), Err(DnsError::Malformed));
        // A pointer forward, to the record's own data.
        let msg = answer_with(&[a(&[0xc0, at + 12], [1, 0, 0, 0])]);
        assert_eq!(parse(&msg), Err(DnsError::Malformed));
        // The question's name a pointer (to the header, before it).
        let mut msg = header(ID, QR, 1, 0);
        msg.extend_from_slice(&[0xc0, 0x00, 0, 1, 0, 1]);
        assert!(parse(&msg).is_err());
        // A CNAME to itself is not followed for ever.
        let msg = answer_with(&[record(TO_QNAME, TYPE_CNAME, TO_QNAME)]);
        assert_eq!(parse(&msg), Ok(vec![]));
    }

    #[test]
    fn lengths_past_the_end_are_refused() {
        let good = answer_with(&[a(TO_QNAME, [10, 0, 0, 1])]);
        // More answers than there are.
        let mut more = good.clone();
        more[7] = 2;
        assert_eq!(parse(&more), Err(DnsError::Short));
        // A record's data longer than the message.
        let mut long = good.clone();
        let rdlen = long.len() - 5;
        long[rdlen] = 0x40;
        assert_eq!(parse(&long), Err(DnsError::Short));
        // A label longer than what is left.
        let mut label = header(ID, QR, 1, 0);
        label.extend_from_slice(b"\x3fapp");
        assert_eq!(parse(&label), Err(DnsError::Short));
        // An A record of five bytes.
        let msg = answer_with(&[record(TO_QNAME, TYPE_A, &[1, 2, 3, 4, 5])]);
        assert_eq!(parse(&msg), Err(DnsError::Malformed));
        // Label types 0x40 and 0x80.
        for kind in [0x40, 0x80] {
            let msg = answer_with(&[a(&[kind, 0], [1, 2, 3, 4])]);
            assert_eq!(parse(&msg), Err(DnsError::Malformed));
        }
    }

    #[test]
    fn a_name_over_255_bytes_through_pointers_is_refused() {
        // The first record's owner: three labels of 63 (193 bytes); the
        // second's: one more label in front of a pointer to it (257).
        let mut msg = header(ID, QR, 1, 2);
        msg.extend(question(Kind::A));
        let first = msg.len();
        let mut long = Vec::new();
        for _ in 0..3 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        msg.extend(a(&long, [1, 2, 3, 4]));
        let mut longer = vec![63];
        longer.extend_from_slice(&[b'b'; 63]);
        longer.extend_from_slice(&[0xc0, first as u8]);
        msg.extend(a(&longer, [1, 2, 3, 4]));
        assert_eq!(parse(&msg), Err(DnsError::Malformed));
    }

    #[test]
    fn every_cut_and_every_changed_byte_is_an_answer_or_an_error_never_a_panic() {
        let cname = record(TO_QNAME, TYPE_CNAME, b"\x03pod\xc0\x10");
        let msg = answer_with(&[
            cname,
            a(b"\x03pod\xc0\x10", [10, 0, 0, 1]),
            a(TO_QNAME, [10, 0, 0, 2]),
        ]);
        assert_eq!(
            parse(&msg),
            Ok(vec![Address::V4([10, 0, 0, 1]), Address::V4([10, 0, 0, 2])])
        );
        for end in 0..msg.len() {
            assert!(parse(&msg[..end]).is_err(), "cut at {end}");
        }
        for i in 0..msg.len() {
            for value in [0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc1, 0xff] {
                let mut m = msg.clone();
                m[i] = value;
                let _ = parse(&m);
            }
        }
    }
}

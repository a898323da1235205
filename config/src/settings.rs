//! The validated, typed configuration the relayer runs with.
//!
//! [`Config`](crate::Config) is the file as written: strings, optional keys and one flat
//! table for both ledger kinds. [`Config::validate`](crate::Config::validate) checks it
//! and, when nothing is wrong, returns these [`Settings`]: every value parsed once
//! (addresses as [`EvmAddress`], durations as [`Duration`], route endpoints as ledger
//! ids), every default applied, and every ledger an enum of its kind holding exactly the
//! fields that kind uses. A mode or option the relayer cannot run is refused by
//! validation with its reason, so it has no representation here: whatever a `Settings`
//! holds, `isthmus run` can run.
//!
//! `Debug` shows no secret: the database password is redacted ([`DatabaseUrl`]) and keys
//! are held as their [`KeySource`] (which variable or file), not as key material.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::address::EvmAddress;
use crate::key::KeySource;
use crate::model::{LedgerKind, LogFormat, DEFAULT_PALLET};
use crate::secret::DatabaseUrl;
use crate::tls::TlsFiles;

/// A validated configuration: what [`Config::validate`](crate::Config::validate)
/// returns when it finds no problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[member]`: this relayer's identity in the consortium.
    pub member: MemberSettings,
    /// `[[ledgers]]`, in file order.
    pub ledgers: Vec<LedgerSettings>,
    /// `[[routes]]`, in file order, disabled ones included.
    pub routes: Vec<RouteSettings>,
    /// `[consortium]`.
    pub consortium: ConsortiumSettings,
    /// `[http]`.
    pub http: HttpSettings,
    /// `[attestation]`.
    pub attestation: AttestationSettings,
    /// `[screening]`, if set.
    pub screening: Option<ScreeningSettings>,
    /// `[log]`.
    pub log: LogSettings,
}

impl Settings {
    /// The ledger named `name`.
    pub fn ledger(&self, name: &str) -> Option<&LedgerSettings> {
        self.ledgers.iter().find(|l| l.name == name)
    }

    /// The ledger with protocol domain id `id`.
    pub fn ledger_by_id(&self, id: u32) -> Option<&LedgerSettings> {
        self.ledgers.iter().find(|l| l.id == id)
    }

    /// The route from ledger id `source` to ledger id `destination`, enabled or not.
    pub fn route(&self, source: u32, destination: u32) -> Option<&RouteSettings> {
        self.routes
            .iter()
            .find(|r| r.source == source && r.destination == destination)
    }

    /// The enabled routes.
    pub fn enabled_routes(&self) -> impl Iterator<Item = &RouteSettings> {
        self.routes.iter().filter(|r| r.enabled)
    }

    /// The enabled routes whose source is ledger id `source`.
    pub fn routes_from(&self, source: u32) -> impl Iterator<Item = &RouteSettings> {
        self.enabled_routes().filter(move |r| r.source == source)
    }

    /// The enabled routes whose destination is ledger id `destination`.
    pub fn routes_into(&self, destination: u32) -> impl Iterator<Item = &RouteSettings> {
        self.enabled_routes()
            .filter(move |r| r.destination == destination)
    }

    /// Delivery batches kept in flight towards ledger id `destination`: the largest
    /// `in_flight` of the enabled routes into it, or `None` when no enabled route
    /// delivers there.
    pub fn in_flight_towards(&self, destination: u32) -> Option<u32> {
        self.routes_into(destination).map(|r| r.in_flight).max()
    }
}

/// `[database]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// A `postgres://` or `postgresql://` URL; its password is never printed.
    pub url: DatabaseUrl,
    /// Maximum number of pooled connections, at least 1 (`database.pool_size`, default
    /// [`DEFAULT_POOL_SIZE`](crate::DEFAULT_POOL_SIZE)).
    pub pool_size: u32,
}

/// `[member]`, validated: this relayer's identity in the consortium.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberSettings {
    /// The member's name; it is one of [`ConsortiumSettings::members`].
    pub name: String,
    /// Where its secp256k1 attestation key is read from. Validation read it and found
    /// a valid key whose address is [`MemberSettings::signer`].
    pub key: KeySource,
    /// The address the member's attestations recover to: the address of
    /// [`MemberSettings::key`], equal to this member's `signer` in the consortium.
    pub signer: EvmAddress,
}

/// One `[[ledgers]]` entry, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerSettings {
    /// Unique name; routes and the CLI refer to the ledger by it.
    pub name: String,
    /// Unique protocol domain id (a message's `origin` or `destination`).
    pub id: u32,
    /// RPC endpoints, at least one, each an `http(s)://` or `ws(s)://` URL with a
    /// host, in the order written.
    pub rpc: Vec<String>,
    /// How often to poll the ledger for new final blocks (`poll_interval_ms`, default
    /// [`DEFAULT_POLL_INTERVAL_MS`](crate::DEFAULT_POLL_INTERVAL_MS)); never zero.
    pub poll_interval: Duration,
    /// Where the key that signs delivery transactions on this ledger is read from:
    /// validation found a secp256k1 key there for an EVM ledger, an sr25519 seed or
    /// secret URI for a Substrate ledger.
    pub submitter: KeySource,
    /// The apps on this ledger that send escrowed payments, as `Address32` (an EVM
    /// address left-padded): the senders whose payments the escrow metric sums.
    pub payment_apps: Vec<[u8; 32]>,
    /// What is specific to the ledger's kind.
    pub kind: LedgerKindSettings,
}

impl LedgerSettings {
    /// The ledger's kind, as written in `kind`.
    pub fn ledger_kind(&self) -> LedgerKind {
        match self.kind {
            LedgerKindSettings::Evm(_) => LedgerKind::Evm,
            LedgerKindSettings::Substrate(_) => LedgerKind::Substrate,
        }
    }

    /// The EVM settings, if this is an EVM ledger.
    pub fn evm(&self) -> Option<&EvmSettings> {
        match &self.kind {
            LedgerKindSettings::Evm(evm) => Some(evm),
            LedgerKindSettings::Substrate(_) => None,
        }
    }

    /// The Substrate settings, if this is a Substrate ledger.
    pub fn substrate(&self) -> Option<&SubstrateSettings> {
        match &self.kind {
            LedgerKindSettings::Substrate(substrate) => Some(substrate),
            LedgerKindSettings::Evm(_) => None,
        }
    }
}

/// The part of a ledger's settings that depends on its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerKindSettings {
    /// `kind = "evm"`.
    Evm(EvmSettings),
    /// `kind = "substrate"`.
    Substrate(SubstrateSettings),
}

/// An EVM ledger's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmSettings {
    /// The chain id delivery transactions are signed for (`chain_id`, never 0).
    pub chain_id: u64,
    /// The Outbox contract (`outbox`).
    pub outbox: EvmAddress,
    /// The Inbox contract (`inbox`), a different address than the Outbox.
    pub inbox: EvmAddress,
    /// How a block is judged final (`finality`).
    pub finality: EvmFinality,
    /// Blocks to wait after a block is final before using it (`confirmations`,
    /// default 0).
    pub confirmations: u64,
}

/// How the relayer decides that an EVM block is final: the `finality` modes
/// `isthmus run` supports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EvmFinality {
    /// `finalized-tag`: trusts the node's `finalized` block tag, then checks every
    /// later header by hash linkage. Records made under it say so. For development
    /// chains only.
    FinalizedTag,
    /// `qbft`, `ibft2`, `ibft` or `clique`: the light client follows the header
    /// chain from a trusted checkpoint and verifies every header's seals.
    Sealed(SealedFinality),
}

impl EvmFinality {
    /// The mode as written in the configuration for the protocol at the
    /// checkpoint, e.g. `finalized-tag` or `qbft`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EvmFinality::FinalizedTag => "finalized-tag",
            EvmFinality::Sealed(s) => s.protocol_at(s.checkpoint.number).as_str(),
        }
    }
}

impl fmt::Display for EvmFinality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A block the operator trusts, from which the light client starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrustedBlock {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
}

/// A consensus protocol whose seals the light client verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealProtocol {
    /// QBFT (Besu, GoQuorum).
    Qbft,
    /// IBFT 2.0 (Besu).
    Ibft2,
    /// IBFT 1.0 (GoQuorum's "istanbul").
    Ibft,
    /// Clique proof of authority.
    Clique,
}

impl SealProtocol {
    /// The protocol as written, e.g. `ibft2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SealProtocol::Qbft => "qbft",
            SealProtocol::Ibft2 => "ibft2",
            SealProtocol::Ibft => "ibft",
            SealProtocol::Clique => "clique",
        }
    }
}

impl fmt::Display for SealProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol in force from a block on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConsensusStep {
    /// First block sealed under `protocol`.
    pub from_block: u64,
    /// The protocol.
    pub protocol: SealProtocol,
    /// Its epoch length (votes reset; Clique checkpoints list the signers).
    pub epoch: u64,
}

/// Sealed finality, validated: where the light client starts and which protocol
/// applies at each block.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SealedFinality {
    /// The trusted checkpoint (`checkpoint.number`, `checkpoint.hash`).
    pub checkpoint: TrustedBlock,
    /// The validator set given with the checkpoint (`checkpoint.validators`), where
    /// the header does not carry it.
    pub validators: Option<Vec<EvmAddress>>,
    /// The protocol schedule: `finality`/`epoch` from block 0, then each of
    /// `transitions`, ascending by block.
    pub schedule: Vec<ConsensusStep>,
}

impl SealedFinality {
    /// The protocol in force at block `number`.
    pub fn protocol_at(&self, number: u64) -> SealProtocol {
        self.schedule
            .iter()
            .rev()
            .find(|s| s.from_block <= number)
            .or(self.schedule.first())
            .map_or(SealProtocol::Qbft, |s| s.protocol)
    }
}

/// A Substrate ledger's settings. Its finality is always GRANDPA, taken from the
/// node's RPC and verified by the GRANDPA light client from [`SubstrateSettings::anchor`];
/// the runtime pallet is always addressed by its metadata name
/// [`SubstrateSettings::pallet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubstrateSettings {
    /// The trust anchor (`anchor`).
    pub anchor: GrandpaAnchor,
}

impl SubstrateSettings {
    /// The name under which the relayer finds the Isthmus pallet in the runtime's
    /// metadata: always [`DEFAULT_PALLET`] (`Isthmus`).
    pub fn pallet(&self) -> &'static str {
        DEFAULT_PALLET
    }
}

/// A Substrate ledger's trust anchor, validated: a finalized block and the GRANDPA
/// authority set that finalizes its descendants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrandpaAnchor {
    /// The block's hash.
    pub block: [u8; 32],
    /// Its number.
    pub number: u32,
    /// The id of the set in force after it.
    pub set_id: u64,
    /// The set's authorities (ed25519 public keys) and weights.
    pub authorities: Vec<([u8; 32], u64)>,
    /// Where it was read from, for messages: `chain spec <path>` or `configuration`.
    pub source: String,
}

/// One `[[routes]]` entry, validated: messages from `source`'s outbox to
/// `destination`'s inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSettings {
    /// The source ledger's id.
    pub source: u32,
    /// The destination ledger's id, not the source's.
    pub destination: u32,
    /// The source ledger's name, as written.
    pub source_name: String,
    /// The destination ledger's name, as written.
    pub destination_name: String,
    /// Most messages per delivery transaction, `1..=`[`MAX_BATCH_SIZE`](crate::MAX_BATCH_SIZE)
    /// (default [`DEFAULT_BATCH_SIZE`](crate::DEFAULT_BATCH_SIZE)).
    pub batch_size: u32,
    /// Delivery batches kept in flight at once, `1..=`[`MAX_IN_FLIGHT`](crate::MAX_IN_FLIGHT)
    /// (default [`DEFAULT_IN_FLIGHT`](crate::DEFAULT_IN_FLIGHT)).
    pub in_flight: u32,
    /// The most gas one message's delivery may need (EVM destinations only; `None`:
    /// only the destination's block gas limit).
    pub max_message_gas: Option<u64>,
    /// Whether the route runs.
    pub enabled: bool,
}

/// `[consortium]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsortiumSettings {
    /// The network's id, which every checkpoint digest binds (`network`).
    pub network: [u8; 32],
    /// Every member, this relayer's included, in file order (members take delivery
    /// turns in this order). Names and signers are unique.
    pub members: Vec<ConsortiumMemberSettings>,
    /// Attestations a destination needs, `1..=members.len()`.
    pub threshold: u32,
    /// How long after observing a message a member delivers it although it is
    /// another member's turn (`takeover_s`, default
    /// [`DEFAULT_TAKEOVER_S`](crate::DEFAULT_TAKEOVER_S)); between 1 s and
    /// [`MAX_TAKEOVER_S`](crate::MAX_TAKEOVER_S).
    pub takeover: Duration,
}

impl ConsortiumSettings {
    /// The member named `name`.
    pub fn member(&self, name: &str) -> Option<&ConsortiumMemberSettings> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The member whose attestations recover to `signer`.
    pub fn member_by_signer(&self, signer: &EvmAddress) -> Option<&ConsortiumMemberSettings> {
        self.members.iter().find(|m| m.signer == *signer)
    }
}

/// One `[[consortium.members]]` entry, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsortiumMemberSettings {
    /// Unique member name.
    pub name: String,
    /// The address its attestations recover to.
    pub signer: EvmAddress,
    /// Base URL of its attestation endpoint (`https://`, with a host), as written.
    pub attestation_url: String,
    /// The DNS name its TLS certificate carries and identifies it by (`tls_name`,
    /// default the member name).
    pub tls_name: String,
}

/// `[attestation]`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct AttestationSettings {
    /// Where the mutual-TLS attestation endpoint listens.
    pub listen: SocketAddr,
    /// This member's certificate, key and the consortium CA. Validation read them and
    /// found a certificate the other members accept for this member's TLS name.
    pub tls: TlsFiles,
    /// Requests per second each member may make.
    pub rate_per_s: u32,
    /// Requests a member may make at once above its rate.
    pub burst: u32,
}

/// `[screening]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreeningSettings {
    /// The service's URL (`http` or `https`, with a host).
    pub url: String,
    /// How long its answer is waited for; none in time means hold.
    pub timeout: Duration,
}

/// `[http]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where the plain HTTP server (health, readiness, metrics) listens.
    pub listen: SocketAddr,
}

/// `[log]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// `human` or `json`; `None`: human when stderr is a terminal, JSON otherwise.
    pub format: Option<LogFormat>,
    /// The level filter in `RUST_LOG` syntax; every directive names a known level.
    pub level: String,
}

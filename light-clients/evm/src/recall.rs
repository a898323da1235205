//! Headers this client verified before a restart, admitted again from storage.

use std::sync::Arc;

use crate::error::Error;
use crate::header::Header;
use crate::types::{Address, B256};
use crate::{EvmLightClient, Finality, Verified};

impl EvmLightClient {
    /// Admits again headers that a client with this head verified earlier and
    /// stored with its state: `(header, sealing validators, validator set)`,
    /// ascending, ending at the head. They are bound to the head by hashes alone:
    /// consecutive numbers, each parentHash the hash (under the protocol's rule at
    /// its block) of the one before, the last one hashing to the head. The sealers
    /// and sets are the stored record of what proved them; the seals are not
    /// recovered again. An empty list admits nothing.
    pub fn recall<I>(&self, stored: I) -> Result<Vec<Verified<Header>>, Error>
    where
        I: IntoIterator<Item = (Header, Vec<Address>, Vec<Address>)>,
    {
        let mut out: Vec<Verified<Header>> = Vec::new();
        let mut previous: Option<(u64, B256)> = None;
        for (header, signers, validators) in stored {
            let rule = self
                .config
                .rule_at(header.number)
                .ok_or(Error::NoRuleForBlock(header.number))?;
            if let Some((number, hash)) = previous {
                if header.number != number + 1 {
                    return Err(Error::NonSequentialNumber {
                        expected: number + 1,
                        found: header.number,
                    });
                }
                if header.parent_hash != hash {
                    return Err(Error::ParentHashMismatch {
                        number: header.number,
                        expected: hash,
                        found: header.parent_hash,
                    });
                }
            }
            let hash = rule.protocol.block_hash(&header)?;
            previous = Some((header.number, hash));
            let shared: Arc<[Address]> = match out.last().map(|v| &v.finality) {
                Some(Finality::Sealed { validators: v, .. }) if **v == *validators => Arc::clone(v),
                _ => validators.into(),
            };
            out.push(Verified {
                value: header,
                hash,
                finality: Finality::Sealed {
                    mode: rule.protocol,
                    signers,
                    validators: shared,
                },
            });
        }
        if let Some((number, hash)) = previous {
            if number != self.head.number || hash != self.head.hash {
                return Err(Error::ParentHashMismatch {
                    number: self.head.number,
                    expected: self.head.hash,
                    found: hash,
                });
            }
        }
        Ok(out)
    }
}

//! `DevnetAuthorities`: lets the devnet's sudo key schedule a GRANDPA authority-set
//! change, as a network's session change does. A production runtime changes sets on
//! new sessions; the dev runtime has no sessions, so this call stands in for them.
//! The devnet's voters follow the change when it is enacted.

pub use pallet::*;

#[frame_support::pallet]
pub mod pallet {
    use alloc::vec::Vec;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;
    use sp_consensus_grandpa::AuthorityId;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config + pallet_grandpa::Config {}

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Schedules `next_authorities` (GRANDPA keys and weights) to take over `delay`
        /// blocks after this block, and moves the runtime's set id on (Root only).
        /// The block carries the `ScheduledChange` log; the change is refused while
        /// another one is pending.
        #[pallet::call_index(0)]
        #[pallet::weight(T::DbWeight::get().reads_writes(2, 2))]
        pub fn schedule_grandpa_change(
            origin: OriginFor<T>,
            next_authorities: Vec<(AuthorityId, u64)>,
            delay: BlockNumberFor<T>,
        ) -> DispatchResult {
            ensure_root(origin)?;
            pallet_grandpa::Pallet::<T>::schedule_change(next_authorities, delay, None)?;
            pallet_grandpa::CurrentSetId::<T>::mutate(|id| *id += 1);
            Ok(())
        }
    }
}
